"""docs/quickstart.ipynb: a valid notebook, stored without outputs, that runs top to bottom
(nbclient, the ``python3`` kernel that ipykernel installs) and draws its plot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import bench

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK = REPO / "docs" / "quickstart.ipynb"
KERNEL = "python3"  # ipykernel's own kernel (the `test` extra installs it)
API = ("run", "load", "compare")


def _read():
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    return nb


def _code(nb) -> str:
    return "\n".join(c.source for c in nb.cells if c.cell_type == "code")


def test_quickstart_is_a_clean_v4_notebook_on_the_python3_kernel():
    nb = _read()
    assert nb.nbformat == 4
    assert nb.metadata.kernelspec.name == KERNEL
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code), (
        "store the notebook without outputs (Kernel > Restart & Clear Output)"
    )
    for name in API:  # the Python API it teaches
        assert f"bench.{name}(" in _code(nb)
    assert "lenet5" in _code(nb)
    assert "simple_cnn" in _code(nb)


@pytest.mark.slow
@pytest.mark.skipif(
    not all(hasattr(bench, name) for name in API),
    reason="the notebook calls the Python API bench.run/load/compare, which this checkout "
    "does not have yet",
)
def test_quickstart_runs_top_to_bottom(tmp_path, monkeypatch):
    from nbclient import NotebookClient

    nb = _read()
    # the kernel imports this checkout's bench, and writes nothing into the repository
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    client = NotebookClient(
        nb, timeout=600, kernel_name=KERNEL, resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # a cell that raises fails here (CellExecutionError)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the plot was not drawn"
    tables = [o["data"]["text/plain"] for o in outputs if "text/plain" in o.get("data", {})]
    assert any("lenet5" in t and "simple_cnn" in t for t in tables)
    assert not list(REPO.glob("docs/results*"))
