"""Running benchmark processes: one that prints a JSON line, one measured by wait4."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

__all__ = ["PYTHON", "ROOT", "module", "root_env", "run_json", "run_measured", "probe_cli"]

ROOT = Path(__file__).resolve().parents[2]
"""The repository root: where ``python -m benchmarks.NAME`` runs from."""


def module(name: str, *args: str) -> list[str]:
    """The command line that runs module ``name`` (``benchmarks.suite.child``) in a fresh interpreter; give it
    :func:`root_env` so that it finds the package from any working folder."""
    return [sys.executable, "-m", name, *args]


def root_env(env: dict | None = None) -> dict:
    """``env`` (default: this process's) with the repository root first on ``PYTHONPATH``."""
    import os

    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, (str(ROOT), env.get("PYTHONPATH"))))
    return env


def run_json(argv: list[str], timeout: int = 600, env: dict | None = None) -> dict:
    """Run a process that prints one JSON object on its last line (the runtime's one probe runner).

    Raises:
        MeasurementError: the process failed, ran too long or printed no JSON.
    """
    from edgecls.runtime.probe import run_probe

    return run_probe(argv, what=" ".join(map(str, argv[:3])), timeout_s=timeout, env=env)


PYTHON = sys.executable


def run_measured(argv: list[str], stdout: Path, stderr: Path, *, cwd: Path | None = None,
                 env: dict | None = None) -> tuple[int, float, float]:
    """Run ``argv`` with its output in two files; returns (exit code, seconds, peak RSS MB of that process).

    The peak comes from ``wait4``; a child's ru_maxrss starts from its parent's peak at fork (Linux keeps
    it across exec), so call this from a small parent.
    """
    import os

    t0 = time.perf_counter()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
    return os.waitstatus_to_exitcode(status), time.perf_counter() - t0, usage.ru_maxrss * 1024 / 1e6  # KiB → MB


def probe_cli(doc: str, probe, out: Path, **options: tuple[type, object]):
    """The command line of a suite that measures in fresh processes of itself: ``--out`` (default ``out``),
    ``options`` (``rounds=(int, 5)``: ``--rounds``), and the hidden ``--probe SPEC`` a child is run with.
    In a child: runs ``probe(spec)``, prints its JSON, and returns None; else the parsed arguments."""
    import argparse
    import json

    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    for name, (kind, default) in options.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=kind, default=default)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.probe:
        print(json.dumps(probe(json.loads(args.probe))))
        return None
    return args
