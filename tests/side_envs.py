"""Side virtual environments the tests use, each created by a script that ``.ci/run`` runs.

Outside CI a missing environment skips the test that needs it; in CI it fails.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def venv_python(folder: str, script: str, override: str | None = None) -> Path:
    """``ROOT/.cache/<folder>/bin/python`` (or the path in environment variable ``override``)."""
    default = ROOT / ".cache" / folder / "bin" / "python"
    path = Path(os.environ.get(override, default)) if override else default
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"environment missing at {path}; .ci/run should have created it with {script}")
        pytest.skip(f"no environment at {path} (bash {script} creates it)")
    return path
