"""Where a suite's results go: ``OUT/NAME-DATE.json`` (the numbers) and ``OUT/NAME-DATE.md`` (the page)."""

from __future__ import annotations

import json
from pathlib import Path


def publish(out: Path, stem: str, data: dict, page: str) -> None:
    """Write ``data`` and ``page`` as ``out/stem.json`` and ``out/stem.md``, and print the page."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(data, indent=1, default=str))
    (out / f"{stem}.md").write_text(page)
    print(page)
