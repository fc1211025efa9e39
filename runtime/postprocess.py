"""Raw output → scores → ordered, filtered categories."""

from __future__ import annotations

import numpy as np

from edgecls.runtime.card import ModelCard
from edgecls.runtime.errors import OptionError
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.results import Category
from edgecls.runtime.tensors import TensorInfo

__all__ = ["Postprocessor", "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float32)
    return exp / exp.sum(axis=-1, keepdims=True)


class Postprocessor:
    """Turns a raw (N, ...) output into (N, classes) scores and categories.

    Args:
        card: the effective card (labels, whether outputs are logits).
        output: the output tensor (dtype, quantization).
        infer_kind: for a model without a card: apply softmax to a row only when
            it is not already a probability distribution.
    """

    def __init__(self, card: ModelCard, output: TensorInfo, *, infer_kind: bool = False) -> None:
        self._labels = card.labels
        self._index = {label: i for i, label in enumerate(card.labels)}
        self._output = output
        self._logits = card.output.scores == "logits"
        self._infer = infer_kind

    def scores(self, raw: np.ndarray) -> np.ndarray:
        values = self._output.dequantize(raw).reshape(raw.shape[0], -1)
        if self._logits:
            return softmax(values)
        if self._infer:
            is_dist = (values.min(axis=1) >= -1e-6) & (np.abs(values.sum(axis=1) - 1.0) < 1e-2)
            if not is_dist.all():
                values = np.where(is_dist[:, None], values, softmax(values))
        return values

    def check(self, options: ClassifyOptions) -> None:
        """Raise OptionError when an allowlist/denylist names labels the model lacks."""
        for name in ("allowlist", "denylist"):
            wanted = getattr(options, name)
            unknown = sorted(wanted - self._index.keys()) if wanted else []
            if unknown:
                raise OptionError(f"{name} names labels the model does not have: {', '.join(unknown[:10])}")

    def categories(self, row: np.ndarray, options: ClassifyOptions) -> tuple[Category, ...]:
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
