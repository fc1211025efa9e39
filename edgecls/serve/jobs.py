"""One request's classification, off the event loop: the whole image or each of its regions, and the
DeepStack-shaped answers (the scene's label; for regions, a detection-shaped list of boxes)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from edgecls.runtime.capture import HardExamples, Origin
from edgecls.runtime.images import to_pixels
from edgecls.runtime.regions import CropPolicy, Region, cut, regions_from
from edgecls.serve.errors import HTTPError

__all__ = ["MAX_REQUEST_BOXES", "Job", "read_regions", "scene_answer", "detection", "classify_answer",
           "deepstack_answer", "classified_timings"]


MAX_REQUEST_BOXES = 256
"""Boxes one request may ask about (each is classified; more is a 400)."""


def read_regions(fields: dict[str, str]) -> tuple[list[Region], CropPolicy | None] | None:
    """The request's ``boxes`` and ``crop`` fields, or None without ``boxes``.

    Raises:
        HTTPError: 400 for boxes that are not JSON.
        RegionError: boxes that are not boxes, too many, an unreadable crop policy.
    """
    if "boxes" not in fields:
        if "crop" in fields:
            raise HTTPError(400, "crop applies to regions: send boxes too")
        return None
    try:
        data = json.loads(fields["boxes"])
    except (ValueError, RecursionError) as exc:  # RecursionError: nested too deep
        raise HTTPError(400, f"boxes must be JSON (a list of [x_min, y_min, x_max, y_max] boxes, or a DeepStack "
                             f"detection answer): {exc}") from None
    policy = CropPolicy.parse(fields["crop"]) if "crop" in fields else None
    return regions_from(data, max_regions=MAX_REQUEST_BOXES), policy


@dataclass(frozen=True)
class Job:
    """One request's classification, run on a worker thread: the whole image, or each of its regions (one
    engine call); what the model was unsure about offered to the capture (the request's bytes, or the crop)."""

    pool: Any
    data: bytes
    regions: tuple[list[Region], CropPolicy | None] | None
    capture: HardExamples | None
    source: str
    top_k: int
    threshold: float

    def __call__(self) -> Any:
        pool = self.pool
        origin = Origin(self.source, model_sha256=pool.sha256, labels=pool.card.labels)
        if self.regions is None:
            with pool.borrow() as clf:
                result = clf.classify(self.data, max_results=self.top_k, score_threshold=self.threshold)
            if self.capture is not None:  # the request's own bytes; the pool's model and labels
                self.capture.offer(self.data, result.scores, origin)
            return result
        boxes, policy = self.regions
        frame = to_pixels(self.data).array
        with pool.borrow() as clf:
            policy = policy or CropPolicy.parse(clf.card.input.crop)
            results = clf.classify_regions(frame, boxes, crop=policy, max_results=self.top_k,
                                           score_threshold=self.threshold)
        for r in results if self.capture is not None else ():
            if r.crop is not None:
                self.capture.offer(cut(frame, r.crop, policy), r.scores,
                                   replace(origin, crop=(r.crop.left, r.crop.top, r.crop.right, r.crop.bottom)))
        return results


def detection(result) -> dict[str, Any]:
    """One box of DeepStack's detection answer, labelled by the classifier: ``label``, ``confidence`` and the
    box as given (a skipped box: label None, confidence 0 and ``skipped``, the reason)."""
    answer = scene_answer(result)
    box = result.region
    answer.update({"x_min": box.x_min, "y_min": box.y_min, "x_max": box.x_max, "y_max": box.y_max})
    if box.label is not None:
        answer["detector_label"] = box.label
    if result.skipped is not None:
        answer["skipped"] = result.skipped
    return answer


def scene_answer(result) -> dict[str, Any]:
    """DeepStack's scene answer: the top label and its confidence (and, for a multi-label model, every label
    present, in a field DeepStack's clients ignore)."""
    top = result.categories[0] if result.categories else None
    answer = {"label": None if top is None else top.label, "confidence": 0.0 if top is None else top.score}
    if result.multi_label:
        answer["labels"] = [{"label": c.label, "confidence": c.score} for c in result.categories]
    return answer


def classify_answer(result: Any) -> dict[str, Any]:
    """``/v1/classify``'s answer: the image's categories, or ``regions``, one per box in order."""
    if isinstance(result, list):
        return {"regions": [r.to_dict() for r in result]}
    return result.to_dict()


def deepstack_answer(result: Any) -> dict[str, Any]:
    """The DeepStack endpoints' answer: the scene's label, or a detection-shaped ``predictions`` list."""
    if isinstance(result, list):
        return {"predictions": [detection(r) for r in result]}
    return scene_answer(result)


def classified_timings(result: Any) -> list[Any]:
    """The timings of what was classified (a skipped region took none)."""
    return [r.timings for r in (result if isinstance(result, list) else (result,)) if r.scores is not None]
