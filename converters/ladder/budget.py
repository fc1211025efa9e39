"""The accuracy budget a quantized file must stay within (``--max-drop`` / ``--min-agreement``)."""

from __future__ import annotations

from dataclasses import dataclass

from edgecls.converters.validate import Validation

__all__ = ["Budget"]


@dataclass(frozen=True)
class Budget:
    """At most ``max_drop`` accuracy points below Keras (labelled images) and/or at least ``min_agreement``
    top-1 agreement with Keras; given together, both must hold."""

    max_drop: float | None = None
    min_agreement: float | None = None

    @property
    def given(self) -> bool:
        return self.max_drop is not None or self.min_agreement is not None

    def holds(self, v: Validation) -> bool:
        """True when ``v`` is within every part of the budget given."""
        agreement_ok = self.min_agreement is None or v.top1_agreement >= self.min_agreement
        drop_ok = self.max_drop is None or (v.accuracy_drop is not None and v.accuracy_drop * 100 <= self.max_drop + 1e-9)
        return agreement_ok and drop_ok

    def describe(self) -> str:
        parts = ([f"accuracy within {self.max_drop:g} pt of Keras"] if self.max_drop is not None else []) + \
                ([f"top-1 agreement ≥ {self.min_agreement:g}"] if self.min_agreement is not None else [])
        return " and ".join(parts) or "no budget"
