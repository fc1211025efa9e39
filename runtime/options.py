"""Options for creating a classifier and for each classification call."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar

from edgecls.runtime.backends.base import DEVICES
from edgecls.runtime.card import checked_mean_std
from edgecls.runtime.errors import EdgeclsError, OptionError

__all__ = ["ClassifyOptions", "ClassifierOptions", "read_labels", "options_from"]

T = TypeVar("T")


def options_from(cls: type[T], keywords: Mapping[str, Any], *, what: str,
                 error: type[EdgeclsError] = OptionError) -> T:
    """``cls(**keywords)`` for an options dataclass, the one way a call's keywords become its typed options.

    Raises:
        OptionError: (or ``error``) a keyword that is none of ``cls``'s fields, named with the fields there are.
    """
    names = [f.name for f in fields(cls)]
    unknown = sorted(set(keywords) - set(names))
    if unknown:
        raise error(f"unknown {what} option(s) {', '.join(unknown)}; choose from {', '.join(names)}")
    return cls(**keywords)


def read_labels(labels: str | os.PathLike | Sequence[str] | None) -> tuple[str, ...] | None:
    """Class labels from a sequence, or from a text file named by a path (one label per line, blank
    lines skipped).

    Raises:
        OptionError: a string that names no file (a string is never taken as a sequence of letters),
            a file that cannot be read or is not UTF-8, or a label that is not text.
    """
    if labels is None:
        return None
    if isinstance(labels, (str, os.PathLike)):
        path = Path(labels)
        if not path.is_file():
            raise OptionError(f"labels: {str(labels)!r} is not a labels file; pass the path of a text file "
                              "with one label per line, or a list of labels", options=("labels",))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise OptionError(f"labels: {path}: cannot read labels file ({exc.strerror or exc})",
                              options=("labels",)) from exc
        except UnicodeDecodeError as exc:
            raise OptionError(f"labels: {path}: labels file is not UTF-8 text (byte {exc.start}: {exc.reason})",
                              options=("labels",)) from exc
        return tuple(line.strip() for line in text.splitlines() if line.strip())
    if isinstance(labels, (bytes, bytearray)) or not isinstance(labels, Iterable):
        raise OptionError(f"labels must be a list of labels or a labels file, got {type(labels).__name__}",
                          options=("labels",))
    out = tuple(labels)
    if not all(isinstance(label, str) for label in out):
        raise OptionError("labels must all be strings")
    return out


def _labels(values: Iterable[str] | None, name: str) -> frozenset[str] | None:
    if values is None:
        return None
    if isinstance(values, str):
        raise OptionError(f"{name} must be a list of labels, not the string {values!r}")
    return frozenset(str(v) for v in values)


@dataclass(frozen=True)
class ClassifyOptions:
    """Which categories a classification returns.

    Raises:
        OptionError: ``max_results`` is not a positive integer, ``score_threshold``
            is outside [0, 1], or both ``allowlist`` and ``denylist`` are given.
    """

    max_results: int = 5
    score_threshold: float = 0.0
    allowlist: frozenset[str] | None = None
    denylist: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.max_results, bool) or not isinstance(self.max_results, int) or self.max_results <= 0:
            raise OptionError(f"max_results must be a positive integer, got {self.max_results!r}",
                              options=("max_results",))
        try:
            threshold = float(self.score_threshold)
        except (TypeError, ValueError, OverflowError):
            raise OptionError(f"score_threshold must be a number in [0, 1], got {self.score_threshold!r}",
                              options=("score_threshold",)) from None
        if not 0.0 <= threshold <= 1.0:
            raise OptionError(f"score_threshold must be in [0, 1], got {self.score_threshold!r}",
                              options=("score_threshold",))
        object.__setattr__(self, "score_threshold", threshold)
        object.__setattr__(self, "allowlist", _labels(self.allowlist, "allowlist"))
        object.__setattr__(self, "denylist", _labels(self.denylist, "denylist"))
        if self.allowlist is not None and self.denylist is not None:
            raise OptionError("allowlist and denylist are mutually exclusive; give one of them")


@dataclass(frozen=True)
class ClassifierOptions:
    """How to load a model (see :meth:`Classifier.from_options`).

    Attributes:
        model_path: a ``.tflite`` or ``.onnx`` file.
        backend: ``"auto"`` (by suffix) or a registered backend name
            (``"litert"``/``"tflite"``, ``"onnxruntime"``/``"onnx"``).
        device: ``"cpu"``, ``"gpu"`` (error if unavailable; OpenVINO falls back to the CPU with a note),
            ``"npu"`` (OpenVINO only; the same fallback) or ``"auto"`` (GPU when available, else CPU,
            recorded in ``Classifier.notes``).
        num_threads: engine threads; None uses ``EDGECLS_NUM_THREADS`` when set, else every core.
        cache_dir: a folder for compiled models (OpenVINO): the next start loads instead of compiling;
            None: ``EDGECLS_CACHE_DIR`` when set, else no cache.
        labels: override or supply class labels (one per output): a list, or the path of a text
            file with one label per line.
        mean, std: normalization for a model without a card whose graph does
            not normalize (per channel, on 0-255 pixels in the model's colour order).
        resize: override the card's resize mode (``stretch``, ``crop``, ``letterbox``).
        classify: default :class:`ClassifyOptions` for every call.
        trusted_keys: public key files, or a :class:`~edgecls.runtime.trust.Trust` (with a state folder for
            versions); the file must be signed by one of them. None: ``EDGECLS_TRUSTED_KEYS``, else unchecked.
        monitor: watch every classified image for drift against the card's reference profile:
            :class:`~edgecls.runtime.monitor.MonitorOptions`, ``True`` (its defaults), or a
            :class:`~edgecls.runtime.monitor.Monitor` shared by several classifiers; None: no monitor.
    """

    model_path: str | Path
    backend: str = "auto"
    device: str = "cpu"
    num_threads: int | None = None
    cache_dir: str | os.PathLike | None = None
    labels: Sequence[str] | str | os.PathLike | None = None
    mean: Sequence[float] | float | None = None
    std: Sequence[float] | float | None = None
    resize: str | None = None
    classify: ClassifyOptions = field(default_factory=ClassifyOptions)
    trusted_keys: Any = None
    monitor: Any = None

    def __post_init__(self) -> None:
        if self.device not in DEVICES:
            raise OptionError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.mean is not None or self.std is not None:
            checked_mean_std(self.mean, self.std)  # the count is checked against the model's channels at load
        object.__setattr__(self, "labels", read_labels(self.labels))
