"""The wheel (what ``pip install edgecls`` on a device gets) holds every package of the source tree."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# source folder -> import name, as pyproject's package-dir maps them
TREES = {"edgecls": "edgecls", "runtime": "edgecls/runtime", "converters": "edgecls/converters"}


def test_wheel_contains_every_package(tmp_path):
    # build from a fresh copy: setuptools' build/ folder in the checkout would mask a missing package
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in TREES:
        shutil.copytree(ROOT / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True)
    wheel = next((tmp_path / "dist").glob("edgecls-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    expected = set()
    for folder, target in TREES.items():
        for module in (ROOT / folder).rglob("*.py"):
            if "__pycache__" not in module.parts:
                expected.add(f"{target}/{module.relative_to(ROOT / folder).as_posix()}")
    missing = sorted(expected - names)
    assert not missing, f"modules missing from the wheel: {missing}"
    assert "edgecls/__main__.py" in names and "edgecls/runtime/backends/litert.py" in names
    from edgecls.version import __version__

    assert wheel.name.startswith(f"edgecls-{__version__}-")  # pyproject reads the one version
    assert "version =" not in (ROOT / "pyproject.toml").read_text().split("[project]")[1].split("[")[0]
