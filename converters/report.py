"""The export's result: what was written, how it validated, what was decided — typed.

:func:`edgecls.converters.export` returns an :class:`ExportResult` whose parts are the stages' own
objects (the head, the pixel check, each file's :class:`~edgecls.converters.validate.Validation` and
:class:`~edgecls.converters.ladder.climb.LadderResult`, its :class:`QuantizationReport`). One serializer,
:meth:`ExportResult.to_dict`, turns it into what ``<name>_report.json`` holds; the Markdown page reads
that, the table on screen reads the typed result.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgecls.converters.validate import Validation

if TYPE_CHECKING:
    from edgecls.converters.export_options import ExportOptions
    from edgecls.converters.heads import Head
    from edgecls.converters.ladder.climb import LadderResult
    from edgecls.converters.ladder.rungs import LayerError
    from edgecls.converters.normalization import PixelNormalization
    from edgecls.converters.pixel_check import PixelCheck
    from edgecls.converters.quant_report import CalibrationProfile, ClassChange, QuantWarning

__all__ = ["ExportedFile", "ExportResult", "ExportReport", "QuantizationReport", "CalibrationCheck", "report_name",
           "labels_name"]


def report_name(stem: str) -> str:
    """The report's file name for the model named ``stem``: ``<stem>_report.json``, next to
    ``<stem>_<quantization>.<suffix>`` (two models exported into one folder keep one report each)."""
    return f"{stem}_report.json"


def labels_name(stem: str) -> str:
    """The labels file every export writes beside its model files: ``<stem>_labels.txt``, one label a line."""
    return f"{stem}_labels.txt"


@dataclass(frozen=True)
class QuantizationReport:
    """Why an int8 file lost what it lost: its worst layers, the classes that changed, the export's
    calibration warnings (and, where the per-layer error could not be measured, why)."""

    worst_layers: list[LayerError]
    classes: list[ClassChange]
    warnings: list[QuantWarning]
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"worst_layers": [w.to_dict() for w in self.worst_layers[:10]],
                "classes": [c.to_dict() for c in self.classes],
                "warnings": [w.to_dict() for w in self.warnings], **({"note": self.note} if self.note else {})}


@dataclass(frozen=True)
class CalibrationCheck:
    """The calibration images' profile and the warnings it calls for (exports with int8 only)."""

    profile: CalibrationProfile | None
    warnings: list[QuantWarning]

    def to_dict(self) -> dict[str, Any]:
        return {"calibration": self.profile.to_dict() if self.profile else None, "warnings": [w.to_dict() for w in self.warnings]}


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
    ladder: LadderResult | None = None
    """How the quantization ladder met the budget (rung, float layers, candidates); None when not climbed."""
    quantization_report: QuantizationReport | None = None
    """An int8 file's worst layers, per-class changes and the export's calibration warnings."""

    @property
    def rung(self) -> str:
        """What the file holds: the ladder's rung, else the quantization asked for."""
        chosen = self.ladder.chosen if self.ladder is not None else None
        return chosen.rung if chosen is not None else self.quantization

    @property
    def float_nodes(self) -> int:
        """The nodes the ladder kept in float."""
        return len(self.ladder.float_layers) if self.ladder is not None else 0

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
            "quantization_ladder": self.ladder.to_dict() if self.ladder is not None else None,
            "quantization_report": self.quantization_report.to_dict() if self.quantization_report else None,
        }


@dataclass
class ExportResult:
    """Returned by :func:`edgecls.converters.export` and written as ``<name>_report.json`` (``path``)
    by :meth:`to_json`, the one serializer of the export's outcome."""

    source: str
    source_sha256: str
    out_dir: Path
    labels: list[str]
    normalization: PixelNormalization | None
    validation_source: str
    calibration: dict[str, Any]
    """Where the calibration images came from and how many were used."""
    pixels: PixelCheck | None = None
    """The pixel check on labelled images (preset, accuracies under each, why), None when not run."""
    options: ExportOptions | None = None
    files: list[ExportedFile] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    peak_rss_mb: float | None = None
    """Peak resident memory of the exporting process so far (VmHWM on Linux), measured as the report is written."""
    path: Path | None = None
    """Where the report is written (``<name>_report.json`` in ``out_dir``)."""
    quantization: CalibrationCheck | None = None
    """The calibration images' profile and the warnings it calls for (exports with int8 only)."""
    head: Head | None = None
    """The model's head: its kind, how it was decided, what the export baked after it, the evidence."""
    thresholds: tuple[float, ...] | None = None
    """A multi-label head's per-label thresholds (None for a single-label head)."""
    labels_path: Path | None = None
    """The labels file written beside the model files (``<name>_labels.txt``)."""
    frigate: Path | None = None
    """The Frigate model folder written (``model.tflite``, ``labelmap.txt``), when asked for."""
    signatures: list[Path] = field(default_factory=list)
    """The signatures written (``FILE.sig`` beside each model file), when asked for."""

    @property
    def multi_label(self) -> bool:
        return self.head is not None and self.head.multi_label

    @property
    def ok(self) -> bool:
        """True when every file met its minimum top-1 agreement."""
        return all(f.passed for f in self.files)

    @property
    def failed(self) -> list[ExportedFile]:
        return [f for f in self.files if not f.passed]

    def to_dict(self) -> dict[str, Any]:
        """What ``<name>_report.json`` holds (the Markdown page and ``--json`` print the same)."""
        return {
            "source": self.source,
            "source_sha256": self.source_sha256,
            "out_dir": str(self.out_dir),
            "ok": self.ok,
            "labels": self.labels,
            "normalization": asdict(self.normalization) if self.normalization is not None else None,
            "pixels": self.pixels.to_dict() if self.pixels is not None else None,
            "calibration": self.calibration,
            "options": self.options.to_dict() if self.options is not None else {},
            "validation_source": self.validation_source,
            "files": [f.to_dict() for f in self.files],
            "notes": self.notes,
            "seconds": round(self.seconds, 2),
            "peak_rss_mb": None if self.peak_rss_mb is None else round(self.peak_rss_mb),
            "quantization": self.quantization.to_dict() if self.quantization is not None else None,
            "head": self.head.to_dict() if self.head is not None else {},
            "output": {"kind": "multi-label" if self.multi_label else "single-label",
                       "thresholds": list(self.thresholds) if self.thresholds else None},
            "labels_file": None if self.labels_path is None else str(self.labels_path),
            "frigate": None if self.frigate is None else str(self.frigate),
            "signatures": [str(p) for p in self.signatures],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """The report as a page a person reads (what ``edgecls export --report FILE.md`` writes)."""
        from edgecls.converters.report_page import render_markdown

        return render_markdown(self)


ExportReport = ExportResult
"""The earlier name of :class:`ExportResult` (kept so that code written against it keeps working)."""
