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
        else:
            candidates = np.arange(row.shape[0])
            if options.denylist:
                candidates = np.setdiff1d(candidates, [self._index[label] for label in options.denylist])
        scores = row[candidates]
        keep = scores >= options.score_threshold
        candidates, scores = candidates[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")[: options.max_results]
        return tuple(
            Category(int(candidates[i]), self._labels[candidates[i]], float(scores[i])) for i in order
        )
