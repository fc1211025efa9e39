"""The reference profile of an exported file (:mod:`edgecls.runtime.profile`), made from the images it was
validated on and embedded in its card, for the drift monitor on the device."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.converters.checked import CheckedImages
from edgecls.runtime.profile import MIN_PROFILE_IMAGES, Profile, build_profile

__all__ = ["with_profile", "profile_of_images", "PROFILE_BATCH", "MIN_PROFILE_IMAGES"]

PROFILE_BATCH = 64
"""Images per engine call while profiling (the inputs held at once)."""


def profile_of_images(clf: Any, images: Any, source: str, color: str = "bgr") -> Profile:
    """The profile of ``clf`` (a :class:`~edgecls.runtime.Classifier`) on ``images`` (arrays in ``color``
    order, or paths), run ``PROFILE_BATCH`` at a time.

    Raises:
        CardError: fewer than 20 images. ImageError: an image cannot be read. InferenceError: the engine failed.
    """
    inputs, scores = [], []
    for start in range(0, len(images), PROFILE_BATCH):
        batch = np.stack([clf.preprocess(image, color=color) for image in images[start:start + PROFILE_BATCH]])
        inputs.append(batch)
        scores.append(clf.scores_of_inputs(batch))
    thresholds = clf.card.output.thresholds
    return build_profile(np.concatenate(inputs), np.concatenate(scores), clf.card.input,
                         multi_label=clf.multi_label, source=source,
                         thresholds=None if thresholds is None else np.asarray(thresholds))


def with_profile(data: bytes, converter: Any, suffix: str, checked: CheckedImages, work: Path,
                 notes: list[str]) -> bytes:
    """``data`` (an exported file, validated) with the reference profile of its own answers on the checked
    images in its card; unchanged, saying why in ``notes``, when those images are synthetic (a profile of
    noise would mislead) or fewer than :data:`MIN_PROFILE_IMAGES`."""
    from edgecls.runtime.classifier import Classifier

    why = ("the images it was checked on are synthetic" if checked.dataset is None and
           checked.source == "synthetic images" else f"it was checked on {len(checked.images)} images, fewer than "
           f"{MIN_PROFILE_IMAGES}" if len(checked.images) < MIN_PROFILE_IMAGES else None)
    if why is not None:
        note = f"no drift reference profile in the files: {why} (edgecls profile MODEL IMAGES makes one later)"
        if note not in notes:
            notes.append(note)
        return data
    with tempfile.TemporaryDirectory(dir=work) as folder:
        path = Path(folder) / f"profiled{suffix}"
        path.write_bytes(data)
        with Classifier.from_path(path, num_threads=None, trusted_keys=()) as clf:
            color = "bgr" if clf.card.input.color == "bgr" else "rgb"
            source = "calibration images" if checked.source.startswith("calibration") else "validation images"
            profile = profile_of_images(clf, checked.images, source, color)
            card = clf.card
    return converter.embed(data, replace(card, profile=profile.to_dict()))
