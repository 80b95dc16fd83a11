"""Shared fixtures: fake plugin distributions, tiny models, temporary stores."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A committed copy of a real results store: report, page and golden tests read it, never the
# live results/ that a user's own runs change.
STORE = REPO / "tests" / "data" / "store"
LONG_MACHINE = {
    "cpu": "Intel(R) Xeon(R) Platinum 8480+",
    "cpu_flags": ["avx2", "fma", "avx512f", "avx512bw", "avx512_bf16", "avx512_vnni",
                  "amx_tile", "amx_bf16", "amx_int8"],
    "cores": 224,
}  # fmt: skip


def copy_runs(src: Path, dst: Path, machine: dict, prefix: str, pick=lambda doc: True) -> int:
    """Copy the run documents of store ``src`` that ``pick`` accepts into store ``dst`` as
    runs of another machine (``machine`` updates each header's machine section); run ids
    take ``prefix``. Returns how many were copied."""
    import json

    from bench.environment import machine_key
    from bench.storage import slug

    n = 0
    for path in sorted(src.glob("*/*.json")):
        doc = json.loads(path.read_text())
        if not pick(doc):
            continue
        doc["machine"] = {**doc["machine"], **machine}
        doc["machine"]["id"], doc["machine"]["label"] = machine_key(doc["machine"])
        doc["run_id"] = (prefix + doc["run_id"])[:8]
        folder = dst / slug(doc["machine"]["id"])
        folder.mkdir(parents=True, exist_ok=True)
        stamp = path.stem.rpartition("_")[0]
        (folder / f"{stamp}_{doc['run_id']}.json").write_text(json.dumps(doc))
        n += 1
    return n


@pytest.fixture(scope="session")
def store_with_long_label(tmp_path_factory) -> Path:
    """The committed fixture store plus its AVX-512 runs again, as measured on a machine
    whose label is long ('Intel Xeon Platinum 8480+ · AVX-512 BF16 VNNI AMX · 224 vCPU')."""
    import shutil

    root = tmp_path_factory.mktemp("store") / "results"
    shutil.copytree(STORE, root)
    picked = copy_runs(
        STORE, root, LONG_MACHINE, "x", lambda d: bool(d["machine"].get("cpu_flags"))
    )
    assert picked >= 5
    return root


@pytest.fixture(scope="session")
def committed_reports(store_with_long_label, tmp_path_factory) -> Path:
    """The reports generated from the fixture store with the long-label machine added."""
    from bench.report.generate import generate

    out = tmp_path_factory.mktemp("committed")
    generate(store_with_long_label, out)
    return out


def make_distribution(root: Path, dist: str, entry_points: dict[str, str], modules: dict[str, str]):
    """Lay out an installed-looking distribution (a .dist-info folder) under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    lines = ["[cnn_bench.models]"] + [f"{k} = {v}" for k, v in entry_points.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return root


TINY_PLUGIN = """
    from torch import nn

    def tiny_mlp(pretrained=False, num_classes=10, in_chans=1, **kwargs):
        return nn.Sequential(nn.Flatten(), nn.Linear(in_chans * 8 * 8, 16), nn.ReLU(),
                             nn.Linear(16, num_classes))

    tiny_mlp.input_size = (1, 8, 8)

    def broken_model(pretrained=False, **kwargs):
        raise RuntimeError("this model cannot be built")

    broken_model.input_size = (1, 8, 8)
"""


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """A fake installed plugin 'tiny-plugin' with tiny_mlp and broken_model, on sys.path."""
    root = make_distribution(
        tmp_path / "site",
        "tiny-plugin",
        {"tiny_mlp": "tiny_plugin_mod:tiny_mlp", "broken_model": "tiny_plugin_mod:broken_model"},
        {"tiny_plugin_mod": TINY_PLUGIN},
    )
    monkeypatch.syspath_prepend(str(root))
    return root


def run_cli(*args: str, extra_path: Path | None = None, cwd: Path | None = None):
    """``python -m bench ARGS`` in a subprocess; returns the CompletedProcess."""
    env = dict(os.environ)
    paths = [str(REPO)] + ([str(extra_path)] if extra_path else [])
    env["PYTHONPATH"] = os.pathsep.join([*paths, env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        capture_output=True, text=True, env=env, cwd=cwd or REPO, timeout=600,
    )  # fmt: skip


def pytest_collection_modifyitems(config, items):
    """Tests marked ``gpu`` run only where torch sees a CUDA device."""
    marked = [item for item in items if "gpu" in item.keywords]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA; torch sees no GPU here")
    for item in marked:
        item.add_marker(skip)
