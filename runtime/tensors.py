"""Engine-neutral description of a model's input or output tensor."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgecls.runtime.card import Quantization

__all__ = ["TensorInfo"]


@dataclass(frozen=True)
class TensorInfo:
    """Name, shape (None for a dynamic dimension), dtype and quantization of a tensor."""

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    quantization: Quantization | None = None

    @property
    def dtype_name(self) -> str:
        return np.dtype(self.dtype).name

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Float32 values of ``values`` (identity cast for float tensors)."""
        if self.quantization is None:
            return values.astype(np.float32, copy=False)
        q = self.quantization
        return (values.astype(np.float32) - q.zero_point) * np.float32(q.scale)
