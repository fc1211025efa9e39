"""The export report: what was written, how it validated, what was decided."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgecls.converters.validate import Validation
from edgecls.runtime.card import float_node_count

__all__ = ["ExportedFile", "ExportReport", "report_name"]


def report_name(stem: str) -> str:
    """The report's file name for the model named ``stem``: ``<stem>_report.json``, next to
    ``<stem>_<quantization>.<suffix>`` (two models exported into one folder keep one report each)."""
    return f"{stem}_report.json"


@dataclass(frozen=True)
class ExportedFile:
    """One written model file and its validation against the Keras model."""

    path: Path
    format: str
    quantization: str
    size_bytes: int
    validation: Validation
    min_agreement: float | None
    """The agreement floor it had to reach (None: not checked, only ``max_drop``)."""
    seconds: float
    max_drop: float | None = None
    """The accuracy budget in points (None: not checked)."""
    ladder: dict[str, Any] | None = None
    """How the quantization ladder met the budget (rung, float layers, candidates); None when not climbed."""
    quantization_report: dict[str, Any] | None = None
    """An int8 file's worst layers, per-class changes and the export's calibration warnings."""

    @property
    def rung(self) -> str:
        """What the file holds: the ladder's rung, else the quantization asked for."""
        return (self.ladder or {}).get("rung") or self.quantization

    @property
    def float_nodes(self) -> int:
        """The nodes the ladder kept in float (see :func:`edgecls.runtime.card.float_node_count`)."""
        return float_node_count(self.ladder)

    @property
    def passed(self) -> bool:
        """Every budget given holds: agreement ≥ ``min_agreement`` and accuracy drop ≤ ``max_drop`` points."""
        from edgecls.converters.ladder.budget import Budget

        return Budget(self.max_drop, self.min_agreement).holds(self.validation)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "format": self.format,
            "quantization": self.quantization,
            "size_bytes": self.size_bytes,
            "seconds": round(self.seconds, 3),
            "min_agreement": self.min_agreement,
            "max_drop": self.max_drop,
            "passed": self.passed,
            "validation": self.validation.to_dict(),
            "rung": self.rung,
            "quantization_ladder": self.ladder,
            "quantization_report": self.quantization_report,
        }


@dataclass
class ExportReport:
    """Returned by :func:`edgecls.converters.export` and written as ``<name>_report.json`` (``path``)."""

    source: str
    source_sha256: str
    out_dir: Path
    labels: list[str]
    normalization: dict[str, Any]
    validation_source: str
    calibration: dict[str, Any]
    pixels: dict[str, Any] | None = None
    """The pixel check on labelled images (preset, accuracies under each, why), None when not run."""
    options: dict[str, Any] = field(default_factory=dict)
    files: list[ExportedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    """Peak resident memory of the exporting process so far (VmHWM on Linux), measured as the report is written."""
    path: Path | None = None
    """Where the report is written (``<name>_report.json`` in ``out_dir``)."""
    quantization: dict[str, Any] | None = None
    """The calibration images' profile and the warnings it calls for (exports with int8 only)."""
    head: dict[str, Any] = field(default_factory=dict)
    """The model's head: its kind, how it was decided, what the export baked after it, the evidence."""
    output: dict[str, Any] = field(default_factory=dict)
    """What every file outputs: ``kind`` (single-label or multi-label) and, multi-label, the ``thresholds``."""

    @property
    def ok(self) -> bool:
        """True when every file met its minimum top-1 agreement."""
        return all(f.passed for f in self.files)

    @property
    def failed(self) -> list[ExportedFile]:
        return [f for f in self.files if not f.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_sha256": self.source_sha256,
            "out_dir": str(self.out_dir),
            "ok": self.ok,
            "labels": self.labels,
            "normalization": self.normalization,
            "pixels": self.pixels,
            "calibration": self.calibration,
            "options": self.options,
            "validation_source": self.validation_source,
            "files": [f.to_dict() for f in self.files],
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "peak_rss_mb": None if self.peak_rss_mb is None else round(self.peak_rss_mb),
            "quantization": self.quantization,
            "head": self.head,
            "output": self.output,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """The report as a page a person reads (what ``edgecls export --report FILE.md`` writes)."""
        from edgecls.converters.report_page import render_markdown

        return render_markdown(self)
