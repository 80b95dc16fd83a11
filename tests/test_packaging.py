"""The wheel carries the model cards, and an installed cnn-bench finds them."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO


@pytest.mark.slow
def test_installed_wheel_finds_the_cards(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(wheels), str(REPO)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    (wheel,) = wheels.glob("cnn_bench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bench/_cards/resnet50.toml" in names
    assert "bench/_cards/lenet5.toml" in names
    # every module of the checkout ships: a package missing from pyproject.toml's list is not
    missing = sorted(
        str(p.relative_to(REPO)) for p in (REPO / "bench").rglob("*.py")
        if str(p.relative_to(REPO)) not in names
    )  # fmt: skip
    assert not missing, f"left out of the wheel: {missing}"

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(wheel)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(site)
    code = (
        "import bench.registry.cards as c, bench;"
        f"assert str(bench.__file__).startswith({str(site)!r}), bench.__file__;"
        "cards = c.load_cards(); print(len(cards), cards['vgg16'].published.params)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    n, params = out.stdout.split()
    assert int(n) == len(list((REPO / "registry").glob("*.toml")))
    assert params == "138357544"
