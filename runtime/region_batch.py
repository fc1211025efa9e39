"""Classify the regions of one frame: every crop prepared from the decoded frame, run together as one batch.

What :meth:`Classifier.classify_regions <edgecls.runtime.Classifier.classify_regions>` does: decode the
frame once at full resolution, plan each region's crop (:meth:`CropPolicy.plan
<edgecls.runtime.regions.CropPolicy.plan>`), resize each crop from the frame, convert the colour and apply
the input's lookup table once over the batch (:meth:`Preprocessor.into_many
<edgecls.runtime.preprocess.Preprocessor.into_many>`), and run them together, at most :data:`REGION_BATCH`
at once (so a frame with a thousand boxes holds at most that many inputs at once). ONNX Runtime takes a
batch in one call through the dynamic batch dimension of our exports; LiteRT runs it in steps of 8 on an
interpreter kept for batches, the rest one at a time (:class:`~edgecls.runtime.backends.litert.LiteRTBackend`);
a file with a fixed batch is run in steps of it by its backend.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from edgecls.runtime.images import ImageInput, to_pixels
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.regions import Crop, CropPolicy, cut, regions_from
from edgecls.runtime.results import RegionResult, Timings

if TYPE_CHECKING:
    from edgecls.runtime.classifier import Classifier

__all__ = ["REGION_BATCH", "classify_regions"]

REGION_BATCH = 32
"""Crops per engine call: the inputs held at once whatever the number of boxes."""


def classify_regions(clf: Classifier, frame: ImageInput, regions: object, policy: CropPolicy,
                     options: ClassifyOptions, color: str = "bgr") -> list[RegionResult]:
    """One :class:`RegionResult` per region, in order (skipped ones with their reason).

    Raises:
        RegionError: a region that is not a box (naming its index).
        ImageError: the frame cannot be read.
        InferenceError: the engine failed.
    """
    boxes = regions_from(regions)
    pixels = to_pixels(frame, color=color)  # the whole frame, at full resolution: crops need its detail
    height, width = pixels.array.shape[:2]
    plans = [policy.plan(region, width, height) for region in boxes]
    multi = clf.multi_label
    results: list[RegionResult | None] = [
        None if isinstance(plan, Crop) else RegionResult((), Timings(0.0, 0.0, 0.0), None, multi,
                                                         region=boxes[i], skipped=plan)
        for i, plan in enumerate(plans)]
    todo = [i for i, plan in enumerate(plans) if isinstance(plan, Crop)]
    for start in range(0, len(todo), REGION_BATCH):
        chunk = todo[start:start + REGION_BATCH]
        t0 = time.perf_counter()
        inputs = clf.preprocessor.buffer(len(chunk))  # one slot per crop (every crop is fitted the policy's way)
        clf.preprocessor.into_many([cut(pixels.array, plans[i], policy) for i in chunk], pixels.order, inputs,
                                   resize=plans[chunk[0]].fit, sample=policy.sample)
        t1 = time.perf_counter()
        scores = clf.scores_of_inputs(inputs)
        t2 = time.perf_counter()
        answers = clf.categorize(scores, options)
        n = len(chunk)
        timings = Timings((t1 - t0) * 1e3 / n, (t2 - t1) * 1e3 / n, (time.perf_counter() - t2) * 1e3 / n)
        for i, row, categories in zip(chunk, scores, answers, strict=True):
            results[i] = RegionResult(categories, timings, row, multi, region=boxes[i], crop=plans[i])
    return results  # type: ignore[return-value]
