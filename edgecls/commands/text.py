"""What the commands print is safe to print: labels, paths and messages come from model files and
folders nobody checked, so control characters (terminal escape sequences among them) are shown as
``\\xNN`` escapes, never sent to the terminal, and JSON never carries NaN or infinity (not JSON)."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import click

__all__ = ["printable", "echo", "json_line", "categories_text"]

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: Any) -> str:
    """``str(text)`` with every control character but tab and newline written as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def echo(text: Any, err: bool = False) -> None:
    """``click.echo`` of :func:`printable` text."""
    click.echo(printable(text), err=err)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def json_line(data: Any, indent: int | None = None) -> str:
    """JSON text of ``data`` with NaN and infinities written as ``null``."""
    return json.dumps(_finite(data), indent=indent, allow_nan=False)


def categories_text(categories, multi_label: bool = False) -> str:
    """``label=score`` pairs, or a plain sentence when a threshold or list left none (a multi-label model:
    when no label is present)."""
    if not categories:
        return "(no label at or over its threshold)" if multi_label else "(no class above the threshold)"
    return "  ".join(f"{c.label}={c.score:.3f}" for c in categories)
