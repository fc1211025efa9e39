"""Raw output → scores → ordered, filtered categories."""

from __future__ import annotations

import logging
import threading

import numpy as np

from edgecls.runtime.card import ModelCard
from edgecls.runtime.errors import OptionError
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.results import Category
from edgecls.runtime.tensors import TensorInfo

__all__ = ["Postprocessor", "softmax"]

_log = logging.getLogger("edgecls")


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float32)
    return exp / exp.sum(axis=-1, keepdims=True)


class Postprocessor:
    """Turns a raw (N, ...) output into (N, classes) scores and categories.

    A single-label model answers its top classes; a multi-label model (``card.output.kind``) answers every
    label at or over its threshold, possibly none (``max_results`` does not cut that set).

    Args:
        card: the effective card (labels, whether outputs are logits, single- or multi-label).
        output: the output tensor (dtype, quantization).
        infer_kind: for a model without a card: apply softmax to a row only when
            it is not already a probability distribution.
        path: the model file, named by the warning below.

    The first scores are checked once: a model whose card (or, without one, whose file) says probabilities
    but whose scores are not a distribution gets one warning (``warnings``, and the ``edgecls`` logger).
    """

    def __init__(self, card: ModelCard, output: TensorInfo, *, infer_kind: bool = False, path: str = "model") -> None:
        self._labels = card.labels
        self._index = {label: i for i, label in enumerate(card.labels)}
        self._output = output
        self._logits = card.output.scores == "logits"
        self._infer = infer_kind
        self._multi = card.output.multi_label
        self._thresholds = np.asarray(card.output.label_thresholds(), np.float32) if self._multi else None
        self._path = path
        self._checked = self._logits  # logits are turned into probabilities: nothing to warn about
        self._lock = threading.Lock()
        self.warnings: list[str] = []

    @property
    def multi_label(self) -> bool:
        return self._multi

    def scores(self, raw: np.ndarray) -> np.ndarray:
        values = self._output.dequantize(raw).reshape(raw.shape[0], -1)
        if not self._checked:
            self._check_first(values)
        if self._logits:
            return softmax(values)
        if self._infer:
            is_dist = _distributions(values)
            if not is_dist.all():
                values = np.where(is_dist[:, None], values, softmax(values))
        return values

    def _check_first(self, values: np.ndarray) -> None:
        """Warn once when the first scores are not what the card (or, without one, a classifier) promises."""
        with self._lock:
            if self._checked:
                return
            self._checked = True
        if self._multi:
            bad = values.min() < -1e-6 or values.max() > 1 + 1e-6
            seen = f"range {values.min():.3g}..{values.max():.3g}"
        else:  # a quantized softmax rounds each score: its rows sum to 1 within a few steps
            step = self._output.quantization.scale if self._output.quantization is not None else 0.0
            bad = not _distributions(values, max(_SUM_SLACK, values.shape[1] * step)).all()
            seen = f"the first image's sum to {values[0].sum():.4g}, range {values.min():.3g}..{values.max():.3g}"
        if not bad:
            return
        if self._infer:
            fix = ("softmax applied to them; export the model with edgecls (which bakes probabilities in), or give "
                   "it a card whose output.scores is 'logits'")
        else:
            fix = ("its card says they are; re-export it with edgecls, or set output.scores to 'logits' in its card")
        message = f"{self._path}: the model's scores are not probabilities ({seen}): {fix}"
        self.warnings.append(message)
        _log.warning("%s", message)

    def check(self, options: ClassifyOptions) -> None:
        """Raise OptionError when an allowlist/denylist names labels the model lacks."""
        for name in ("allowlist", "denylist"):
            wanted = getattr(options, name)
            unknown = sorted(wanted - self._index.keys()) if wanted else []
            if unknown:
                raise OptionError(f"{name} names labels the model does not have: {', '.join(unknown[:10])}")

    def categories(self, row: np.ndarray, options: ClassifyOptions) -> tuple[Category, ...]:
        if self._multi:
            return self._present(row, options)
        if options.allowlist is not None:
            candidates = np.array(sorted(self._index[label] for label in options.allowlist), dtype=np.int64)
        elif options.denylist:
            candidates = np.setdiff1d(np.arange(row.shape[0]), [self._index[label] for label in options.denylist])
        else:
            candidates = None  # every class: no index copy
        scores = row if candidates is None else row[candidates]
        if options.score_threshold > 0.0:
            keep = np.flatnonzero(scores >= options.score_threshold)
            candidates = keep if candidates is None else candidates[keep]
            scores = scores[keep]
        k = min(options.max_results, scores.shape[0])
        if k == 0:
            return ()
        # Top-k without sorting every class: partition, then order the k (ties by lower index).
        top = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
        top = top[np.lexsort((top, -scores[top]))]
        index = top if candidates is None else candidates[top]
        return tuple(Category(int(i), self._labels[i], float(scores[j])) for i, j in zip(index, top, strict=True))

    def categories_rows(self, rows: np.ndarray, options: ClassifyOptions) -> list[tuple[Category, ...]]:
        """:meth:`categories` of each row of ``rows`` (N, classes): one sort for the whole matrix when every
        class is a candidate (no allow/deny list, one distribution per row), else row by row."""
        if self._multi or options.allowlist is not None or options.denylist or rows.ndim != 2:
            return [self.categories(row, options) for row in rows]
        k = min(options.max_results, rows.shape[1])
        order = np.argsort(-rows, axis=1, kind="stable")[:, :k]  # stable: ties by lower index
        top = np.take_along_axis(rows, order, axis=1)
        labels, floor = self._labels, options.score_threshold
        return [tuple(Category(i, labels[i], s) for i, s in zip(index, scores, strict=True) if s >= floor)
                for index, scores in zip(order.tolist(), top.astype(np.float64).tolist(), strict=True)]

    def _present(self, row: np.ndarray, options: ClassifyOptions) -> tuple[Category, ...]:
        """Every label at or over its threshold (and ``score_threshold``; allow/deny lists applied), by score."""
        present = (row >= self._thresholds) & (row >= options.score_threshold)
        if options.allowlist is not None:
            present &= np.isin(np.arange(row.shape[0]), [self._index[label] for label in options.allowlist])
        elif options.denylist:
            present[[self._index[label] for label in options.denylist]] = False
        index = np.flatnonzero(present)
        index = index[np.lexsort((index, -row[index]))]
        return tuple(Category(int(i), self._labels[i], float(row[i])) for i in index)


_SUM_SLACK = 0.05
"""How far from 1 the first rows may sum before the warning: an int8 file's softmax (an ONNX QDQ one's
output is float but was rounded to 1/255 steps inside) sums to 0.98..1.02; logits essentially never fall
within 5 % of 1 while all lying in [0, 1]."""


def _distributions(values: np.ndarray, tolerance: float = 1e-2) -> np.ndarray:
    """Per row, whether it is a probability distribution (in [0, 1], summing to 1 within ``tolerance``)."""
    return (values.min(axis=1) >= -1e-6) & (values.max(axis=1) <= 1 + 1e-6) & \
        (np.abs(values.sum(axis=1) - 1.0) < tolerance)
