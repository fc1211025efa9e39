"""The suites' one harness for results: ``OUT/STEM.json`` (the numbers) and ``OUT/STEM.md`` (the page), both
saying the machine and the commit they were measured on. (Rounds and their spread: :mod:`.rounds`.)"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["RESULTS", "machine", "commit", "publish", "spread_range"]

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
"""Where committed results live."""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {"python": platform.python_version(), "processor": platform.machine(), "cpu": _cpu_model(),
            "cores": os.cpu_count(), "system": platform.system()}


def commit() -> str:
    """The checkout's commit (``+changes`` when the tree differs from it); empty outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, timeout=30)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    if head.returncode != 0:
        return ""
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def publish(out: Path, stem: str, data: dict, page: str) -> None:
    """Write ``data`` (with ``machine`` and ``commit`` added) and ``page`` (with a line saying both) as
    ``out/stem.json`` and ``out/stem.md``, and print the page."""
    facts, made_at = machine(), commit()
    data = {**data, "machine": data.get("machine", facts), "commit": made_at}
    page = (page.rstrip("\n") + f"\n\nMeasured on {facts['cpu']} ({facts['cores']} cores, {facts['processor']}), "
            f"Python {facts['python']}, commit {made_at or 'unknown'}.\n")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    (out / f"{stem}.md").write_text(page)
    print(page)


def spread_range(spread: dict | None, digits: int = 2) -> str:
    """`` (min–max)`` of a ratio's spread for a results page; nothing for a single round (no spread)."""
    return f" ({spread['min']:.{digits}f}–{spread['max']:.{digits}f})" if spread else ""
