"""Side environments some tests need, each made by an idempotent script under ``tests/``.

A missing one is set up on first use by running its script (virtual environments are cached
under ``.cache/``; Mosquitto comes from Debian's package), so the README's plain ``pytest``
runs the same tests as CI. A script that fails fails the test with its output. Only
``EDGECLS_SKIP_SIDE_ENVS=1`` turns a missing environment into a skip (offline machines).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

USED: dict[str, str] = {}
"""The side environments this run used, and how they were found (the summary at the end lists them)."""


def ensure(script: str, present: Callable[[], bool], what: str) -> None:
    """Run ``script`` (relative to the repository) unless ``present()``; fail the test if it still is not."""
    ours = not Path(script).is_absolute()  # the project's own scripts (not a test's of this module)
    if present():
        if ours:
            USED.setdefault(what, "found")
        return
    if os.environ.get("EDGECLS_SKIP_SIDE_ENVS") == "1":
        pytest.skip(f"{what} missing and EDGECLS_SKIP_SIDE_ENVS=1 (bash {script} sets it up)")
    done = subprocess.run(["bash", str(ROOT / script)], cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not present():
        pytest.fail(f"{what} missing and `bash {script}` could not set it up (exit {done.returncode}):\n"
                    f"{(done.stdout + done.stderr)[-2000:]}")
    if ours:
        USED[what] = f"set up now by bash {script}"


def venv_python(folder: str, script: str, override: str | None = None) -> Path:
    """``ROOT/.cache/<folder>/bin/python`` (or the path in environment variable ``override``), set up if missing."""
    default = ROOT / ".cache" / folder / "bin" / "python"
    path = Path(os.environ.get(override, default)) if override else default
    ensure(script, path.exists, f"the environment at {path}")
    return path
