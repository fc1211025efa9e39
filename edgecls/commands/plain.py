"""Tables and a console without rich: runtime-only installs (``.[tflite]``, ``.[onnx]``) lack it."""

from __future__ import annotations

from typing import Any, TextIO

__all__ = ["PlainTable", "PlainConsole"]


class PlainTable:
    """The part of ``rich.table.Table`` the commands use, rendered as aligned text."""

    def __init__(self, title: str = "", **_: Any) -> None:
        self.title = title
        self._columns: list[tuple[str, str]] = []
        self._rows: list[tuple[str, ...]] = []

    def add_column(self, header: str, justify: str = "left", **_: Any) -> None:
        self._columns.append((header, justify))

    def add_row(self, *cells: str) -> None:
        self._rows.append(tuple(str(c) for c in cells))

    def __str__(self) -> str:
        headers = [h for h, _ in self._columns]
        widths = [max(len(str(row[i])) for row in [headers, *self._rows]) for i in range(len(headers))]

        def line(cells) -> str:
            return "  ".join(c.rjust(w) if j == "right" else c.ljust(w)
                             for c, w, (_, j) in zip(cells, widths, self._columns, strict=True)).rstrip()

        out = [self.title] if self.title else []
        out += [line(headers), "  ".join("-" * w for w in widths)] + [line(row) for row in self._rows]
        return "\n".join(out)


class PlainConsole:
    """``print`` for text and :class:`PlainTable` (rich markup is not used by the commands)."""

    def __init__(self, file: TextIO) -> None:
        self.file = file

    def print(self, *objects: Any, **_: Any) -> None:
        print(*(str(o) for o in objects), file=self.file)
