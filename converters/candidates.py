"""Model bytes → a validated file with its card: what the export and its quantization ladder share."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.converters.decisions import SINGLE_LABEL, Decisions
from edgecls.converters.provenance import CardFacts, make_card
from edgecls.converters.validate import Validation, compare, file_scores

__all__ = ["FileMaker"]


def _tensors(path: Path):
    from edgecls.runtime.backends import open_backend

    backend = open_backend(path)
    try:
        return backend.input, backend.output
    finally:
        backend.close()


class FileMaker:
    """Validates, times and finishes one format's candidate files (probe files in ``work``).

    ``card`` is what each file's card says whatever the file holds (its tensors, scheme and validation
    are added per file). The predicted classes of every bytes validated are kept (a few bytes per
    image) so that the final file needs no second validation pass.
    """

    def __init__(self, converter: Any, work: Path, card: CardFacts, images: np.ndarray, reference: np.ndarray,
                 targets: np.ndarray | None, source: str, decisions: Decisions = SINGLE_LABEL) -> None:
        self.converter, self.work, self.card = converter, work, card
        self.images, self.reference, self.targets, self.source = images, reference, targets, source
        self.decisions = decisions
        self._predicted: dict[str, np.ndarray] = {}
        self._validations: dict[str, Validation] = {}

    def _probe(self, data: bytes, scheme: str) -> tuple[Path, Any]:
        probe = self.work / f"probe{self.converter.suffix}"
        probe.write_bytes(data)
        card = make_card(self.card, tensors=_tensors(probe), scheme=scheme, validation={})
        probe.write_bytes(self.converter.embed(data, card))
        return probe, card

    def _validate(self, probe: Path, data: bytes) -> Validation:
        scores = file_scores(probe, self.images)
        self._predicted[hashlib.sha256(data).hexdigest()] = scores.argmax(1).astype(np.int32)
        return compare(scores, self.reference, self.targets, self.source, self.decisions)

    def validate(self, data: bytes) -> Validation:
        """The bytes' validation against the Keras reference, through the runtime (once per bytes: a
        ladder that starts from bytes validated already does not validate them again). Raises EdgeclsError."""
        key = hashlib.sha256(data).hexdigest()
        if key not in self._validations:
            probe, _ = self._probe(data, "candidate")
            self._validations[key] = self._validate(probe, data)
        return self._validations[key]

    def latencies_ms(self, datas: list[bytes]) -> list[float]:
        """Median engine milliseconds of each bytes on this machine, measured alternating. Raises EdgeclsError."""
        from edgecls.converters.ladder.timing import engine_latencies_ms

        paths = []
        for i, data in enumerate(datas):  # the engine call needs no card: the bytes as they are
            path = self.work / f"timed{i}{self.converter.suffix}"
            path.write_bytes(data)
            paths.append(path)
        try:
            return engine_latencies_ms(paths)
        finally:
            for path in paths:
                path.unlink(missing_ok=True)

    def final(self, data: bytes, scheme: str, ladder: Any, validation: Validation | None = None
              ) -> tuple[bytes, Validation, np.ndarray]:
        """The file's bytes with its final card (validation and ladder), its validation and its predicted
        classes; ``validation`` is reused when these bytes were validated already (the card does not
        change the scores)."""
        probe, card = self._probe(data, scheme)
        predicted = self._predicted.get(hashlib.sha256(data).hexdigest())
        if validation is None or predicted is None:
            validation = self._validate(probe, data)
            predicted = self._predicted[hashlib.sha256(data).hexdigest()]
        provenance = replace(card.provenance, validation=validation.to_dict(),
                             ladder=ladder.to_dict() if ladder else {})
        return self.converter.embed(data, replace(card, provenance=provenance)), validation, predicted
