"""Source fingerprints, label resolution and the model card of each exported file."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from edgecls.converters.data import ImageFolder
from edgecls.converters.errors import ExportError
from edgecls.runtime.card import InputSpec, ModelCard, OutputSpec, Provenance
from edgecls.runtime.datasets import LabelList
from edgecls.runtime.errors import OptionError
from edgecls.runtime.options import read_labels
from edgecls.runtime.tensors import TensorInfo

__all__ = ["sha256_of", "resolve_labels", "CardFacts", "make_card"]


def sha256_of(path: Path | None) -> str:
    """sha256 of a file, or of a folder's files (relative names and contents, sorted); '' for None."""
    if path is None:
        return ""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        if file is not path:
            digest.update(str(file.relative_to(path)).encode())
        with open(file, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def resolve_labels(labels: str | Path | Sequence[str] | None, folders: Sequence[ImageFolder | None],
                   num_classes: int, notes: list[str]) -> list[str]:
    """Labels from a file or list, else class sub-folders, else ``class_0..N-1`` (noted).

    Raises:
        ExportError: unreadable or non-UTF-8 labels file, or a count that differs from the model's outputs.
    """
    origin = "labels"
    if isinstance(labels, (str, Path)):
        path = Path(labels)
        try:
            names = list(read_labels(path) or ())
        except OptionError as exc:
            raise ExportError(str(exc), options=exc.options) from exc
        origin = str(path)
    elif labels is not None:
        names = [str(label) for label in labels]
    else:
        folder = next((f for f in folders if f is not None and f.classes), None)
        if folder is None:
            notes.append(f"warning: no labels given; using class_0..class_{num_classes - 1} (labels= names them)")
            return [f"class_{i}" for i in range(num_classes)]
        names = list(folder.classes)
        origin = f"the labels listed in {folder.root}" if isinstance(folder, LabelList) else f"class folders of {folder.root}"
    if len(names) != num_classes:
        raise ExportError(f"{origin}: {len(names)} labels but the model outputs {num_classes} classes")
    if len(set(names)) != len(names):
        raise ExportError(f"{origin}: labels must be unique")
    return names


@dataclass(frozen=True)
class CardFacts:
    """What every file of one export says about itself, whatever it holds (see :func:`make_card`)."""

    name: str
    labels: Sequence[str]
    spec: InputSpec
    fmt: str
    source: Path | None
    sha256: str
    version: str
    calibration: dict[str, Any]
    head: dict[str, Any] | None = None
    thresholds: Sequence[float] | None = None
    """A multi-label model's thresholds (which makes the card a multi-label model's)."""
    model_version: int = 0
    """The model's version under its name (what a signed update may not go below)."""


def make_card(facts: CardFacts, *, tensors: tuple[TensorInfo, TensorInfo], scheme: str,
              validation: dict[str, Any]) -> ModelCard:
    """The card embedded in one exported file: ``facts`` and what this file holds (its tensors, its scheme,
    its validation)."""
    inp, out = tensors
    thresholds = facts.thresholds
    return ModelCard(
        labels=tuple(facts.labels),
        input=replace(facts.spec, dtype=inp.dtype_name, quantization=inp.quantization),
        output=OutputSpec(num_classes=len(facts.labels), dtype=out.dtype_name, quantization=out.quantization,
                          kind="multi-label" if thresholds is not None else "single-label",
                          thresholds=tuple(thresholds) if thresholds is not None else None),
        name=facts.name,
        version=facts.model_version,
        provenance=Provenance(
            edgecls_version=facts.version,
            created=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            source_file=facts.source.name if facts.source else "",
            source_sha256=facts.sha256,
            format=facts.fmt,
            quantization=scheme,
            calibration=facts.calibration,
            validation=validation,
            head=dict(facts.head or {}),
        ),
    )
