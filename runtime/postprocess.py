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
        self._table = _dequantize_table(output)
        self._table_dtype = np.dtype(output.dtype)
        self._checked = self._logits  # logits are turned into probabilities: nothing to warn about
        self._lock = threading.Lock()
        self.warnings: list[str] = []

    @property
    def multi_label(self) -> bool:
        return self._multi

    def scores(self, raw: np.ndarray) -> np.ndarray:
        if self._table is not None and raw.dtype == self._table_dtype:  # one lookup per score
            values = self._table[raw.view(np.uint8)].reshape(raw.shape[0], -1)
        else:
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
        n = scores.shape[0]
        k = min(options.max_results, n)
        if k == 0:
            return ()
        if k < n and n > _PYTHON_SORT_UP_TO:  # top-k without sorting every class: partition, then order the k
            keys = _descending(scores)
            top = np.argpartition(keys, k - 1)[:k]
            top = top[np.argsort(keys[top])]
            best = list(zip(top.tolist(), scores[top].tolist(), strict=True))
        else:  # few classes: Python sorts them faster than NumPy is called (stably: a tie keeps the lower index)
            values = scores.tolist()
            best = [(j, values[j]) for j in sorted(range(n), key=values.__getitem__, reverse=True)[:k]]
        labels, chosen = self._labels, candidates.tolist() if candidates is not None else None
        return tuple(Category(i, labels[i], score) for i, score in
                     ((j if chosen is None else chosen[j], score) for j, score in best))

    def categories_rows(self, rows: np.ndarray, options: ClassifyOptions) -> list[tuple[Category, ...]]:
        """:meth:`categories` of each row of ``rows`` (N, classes): the top k of every row partitioned out at once
        when every class is a candidate (no allow/deny list, one distribution per row), else row by row."""
        if self._multi or options.allowlist is not None or options.denylist or rows.ndim != 2:
            return [self.categories(row, options) for row in rows]
        k = min(options.max_results, rows.shape[1])
        if k == 0:
            return [() for _ in rows]
        labels, floor = self._labels, options.score_threshold
        if rows.shape[1] <= _PYTHON_SORT_UP_TO:  # few classes: Python sorts each row faster than NumPy is called
            return [tuple(Category(i, labels[i], row[i]) for i in sorted(range(len(row)), key=row.__getitem__,
                                                                           reverse=True)[:k] if row[i] >= floor)
                    for row in rows.tolist()]
        keys = _descending(rows)
        order = np.argpartition(keys, k - 1, axis=1)[:, :k] if k < rows.shape[1] else \
            np.broadcast_to(np.arange(k), rows.shape)  # the top k of each row, unordered: no full sort
        order = np.take_along_axis(order, np.argsort(np.take_along_axis(keys, order, axis=1), axis=1), axis=1)
        top = np.take_along_axis(rows, order, axis=1)
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


_PYTHON_SORT_UP_TO = 64
"""Up to this many candidate classes, ``categories`` sorts them in Python; over it, it partitions out the top k
with NumPy first."""


def _descending(scores: np.ndarray) -> np.ndarray:
    """Int64 keys, smallest first, that order ``scores`` (along the last axis) from the highest, a tie to the
    lower index: all distinct, so a partition picks exactly the classes a stable sort would put first. (The
    bits of a float32, its sign turned around, order as the float does; the index fills the low 32 bits.)"""
    bits = scores.astype(np.float32).view(np.int32).astype(np.int64)
    bits = np.where(bits < 0, bits ^ 0x7FFFFFFF, bits)
    return ~((bits << 32) | (scores.shape[-1] - 1 - np.arange(scores.shape[-1])))


_SUM_SLACK = 0.05
"""How far from 1 the first rows may sum before the warning: an int8 file's softmax (an ONNX QDQ one's
output is float but was rounded to 1/255 steps inside) sums to 0.98..1.02; logits essentially never fall
within 5 % of 1 while all lying in [0, 1]."""


def _distributions(values: np.ndarray, tolerance: float = 1e-2) -> np.ndarray:
    """Per row, whether it is a probability distribution (in [0, 1], summing to 1 within ``tolerance``)."""
    return (values.min(axis=1) >= -1e-6) & (values.max(axis=1) <= 1 + 1e-6) & \
        (np.abs(values.sum(axis=1) - 1.0) < tolerance)


def _dequantize_table(output: TensorInfo) -> np.ndarray | None:
    """The float32 score of each of the 256 codes of a quantized 8-bit output (indexed by its bits as uint8),
    else None."""
    if output.quantization is None or np.dtype(output.dtype) not in (np.dtype(np.uint8), np.dtype(np.int8)):
        return None
    codes = np.arange(256, dtype=np.uint8).view(output.dtype)
    return output.dequantize(codes)
