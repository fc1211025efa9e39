"""Regions of a frame: the crop policies' geometry, the boxes detectors write, one engine call per frame, and
real frames (scikit-image photos with held-out digits pasted at known boxes) classified like the Keras model
and like MediaPipe's ``region_of_interest``."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from builders import read_video

from edgecls import realdata
from edgecls.runtime import Classifier, CropPolicy, OptionError, Region, RegionError
from edgecls.runtime.images import Pixels
from edgecls.runtime.regions import Crop, cut, regions_from
from edgecls.runtime.testing import FakeBackend, by_brightness

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_policies_read_and_write_their_text_and_refuse_what_they_cannot_read():
    assert CropPolicy.parse("square:1.2,min=64,shift") == CropPolicy("square", 1.2, 64, "shift", 0)
    assert CropPolicy.parse("frigate") == CropPolicy(sample="linear") and CropPolicy() == CropPolicy.parse(None)
    assert CropPolicy.parse("mediapipe") == CropPolicy.parse("stretch,warp") == CropPolicy("stretch", sample="warp")
    assert CropPolicy.parse("stretch,pad=edge") == CropPolicy("stretch", 1.0, 0, "pad", "edge")
    assert CropPolicy.parse("letterbox:1.5,pad=114") == CropPolicy("letterbox", 1.5, 0, "pad", 114)
    for policy in (CropPolicy("square", 1.2, 64, "shift"), CropPolicy("stretch", 2.0, 0, "pad", "edge"),
                   CropPolicy("letterbox", 1.0, 8, "pad", 114), CropPolicy("square", 1.0, 0, "pad", 0, "linear")):
        assert CropPolicy.parse(policy.to_text()) == policy
    for text, message in (("blob", "unknown crop mode 'blob'"), ("square:0", r"scale must be in \(0, 10\]"),
                          ("square:x", "'x' is not a number"), ("square,min=-1", "min must be >= 0"),
                          ("square,pad=300", "pad is a grey level 0-255"), ("square,zoom", "cannot read 'zoom'"),
                          ("square:nan", "not a finite number"), ("square,cubic", "cannot read 'cubic'")):
        with pytest.raises(RegionError, match=message):
            CropPolicy.parse(text)


def _frigate_square(box, width, height):
    """The reference, written from Frigate's description: a square of the box's longest edge, centred on the
    box, moved (not padded) to stay inside the frame; where the frame is smaller than the square, the crop
    is what of it lies in the frame."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0)
    left = int(x0 + (x1 - x0) / 2 - side / 2)
    top = int(y0 + (y1 - y0) / 2 - side / 2)
    left = max(0, min(left, width - side))
    top = max(0, min(top, height - side))
    return left, top, min(width, left + side), min(height, top + side)


def test_the_square_policy_is_frigates_crop_on_random_boxes():
    rng = np.random.default_rng(0)
    policy = CropPolicy.parse("frigate")
    for _ in range(2000):
        width, height = int(rng.integers(64, 2000)), int(rng.integers(64, 1200))
        w, h = int(rng.integers(2, width + 1)), int(rng.integers(2, height + 1))
        x0, y0 = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
        crop = policy.plan(Region(x0, y0, x0 + w, y0 + h), width, height)
        assert (crop.left, crop.top, crop.right, crop.bottom) == _frigate_square((x0, y0, x0 + w, y0 + h),
                                                                                   width, height)


def test_crops_at_the_frame_edge_shift_or_pad_and_small_or_outside_boxes_are_skipped_with_the_reason():
    frame = np.full((100, 200, 3), 50, np.uint8)
    frame[:, :10] = 200  # a bright left edge
    corner = Region(0, 40, 20, 60)  # touching the left edge, 20×20
    shifted = CropPolicy.parse("square:2,shift").plan(corner, 200, 100)
    assert (shifted.left, shifted.top, shifted.right, shifted.bottom) == (0, 30, 40, 70)
    padded = CropPolicy.parse("square:2,pad").plan(corner, 200, 100)
    assert (padded.left, padded.top, padded.right, padded.bottom) == (-10, 30, 30, 70)
    black = cut(frame, padded, CropPolicy.parse("square:2,pad"))
    edge = cut(frame, padded, CropPolicy.parse("square:2,pad=edge"))
    assert black.shape == edge.shape == (40, 40, 3)
    assert (black[:, :10] == 0).all() and (edge[:, :10] == 200).all() and (edge[:, 10:20] == 200).all()
    assert cut(frame, shifted, CropPolicy()).base is frame  # inside the frame: a view, no copy
    stretch = CropPolicy.parse("stretch:1.5").plan(Region(100, 40, 140, 60), 200, 100)
    assert (stretch.width, stretch.height, stretch.fit) == (60, 30, "stretch")
    assert CropPolicy.parse("letterbox").plan(Region(100, 40, 140, 60), 200, 100).fit == "letterbox"
    big = CropPolicy().plan(Region(10, 0, 190, 100), 200, 100)  # square of 180 in a frame 100 high
    assert (big.left, big.top, big.right, big.bottom) == (10, 0, 190, 100)
    assert CropPolicy().plan(Region(300, 0, 400, 50), 200, 100) == "outside the frame"
    assert CropPolicy.parse("square,min=24").plan(Region(0, 0, 30, 20), 200, 100).startswith(
        "smaller than the crop policy's min=24 px (30x20)")
    half = CropPolicy().plan(Region(-50, -50, 50, 50), 200, 100)  # clipped to the frame first
    assert (half.left, half.top, half.right, half.bottom) == (0, 0, 50, 50)
    normalized = CropPolicy.parse("stretch").plan(Region(0.25, 0.5, 0.75, 1.0, normalized=True), 200, 100)
    assert (normalized.left, normalized.top, normalized.right, normalized.bottom) == (50, 50, 150, 100)


def test_boxes_are_read_as_detectors_write_them_and_bad_ones_name_their_index():
    deepstack = {"success": True, "predictions": [
        {"label": "person", "confidence": 0.91, "x_min": 10, "y_min": 20, "x_max": 110, "y_max": 220},
        {"label": "car", "confidence": 0.8, "x_min": 300, "y_min": 50, "x_max": 500, "y_max": 150}]}
    regions = regions_from(deepstack)
    assert regions[0] == Region(10, 20, 110, 220, label="person", confidence=0.91)
    assert regions_from([(1, 2, 3, 4), {"box": [0.1, 0.2, 0.3, 0.4], "normalized": True, "label": "bird"},
                         np.array([5, 6, 7, 8])]) == [
        Region(1, 2, 3, 4), Region(0.1, 0.2, 0.3, 0.4, normalized=True, label="bird"), Region(5, 6, 7, 8)]
    for bad, message in (([(1, 2, 3)], "region 0: a box is four numbers"),
                         ([(1, 2, 3, 4), (5, 5, 5, 9)], "region 1: a box needs x_max > x_min"),
                         ([(0, 0, math.inf, 4)], "region 0: a box is four finite numbers"),
                         ([[10**400, 0, 1, 1]], "region 0: a box is four finite numbers"),
                         ([{"x_min": 0, "y_min": 0, "x_max": 10**400, "y_max": 1}], "region 0: a box is four finite"),
                         ([np.array([0, 0, 10**400, 1], dtype=object)], "region 0: a box is four finite"),
                         ([{"x": 1}], "region 0: a box dict has x_min"), ([("a", 1, 2, 3)], "region 0"),
                         ({"boxes": []}, "DeepStack detection answer"), ("0,0,1,1", "a list of boxes")):
        with pytest.raises(RegionError, match=message):
            regions_from(bad)
    with pytest.raises(RegionError, match="more than 2 boxes"):
        regions_from([(0, 0, 1, 1)] * 3, max_regions=2)
    numpy_box = Region(*np.array([1, 2, 30, 40]))  # numpy numbers become plain floats: JSON-ready
    assert numpy_box == Region(1.0, 2.0, 30.0, 40.0) and type(numpy_box.to_dict()["x_max"]) is float
    with pytest.raises(RegionError, match="four finite numbers"):
        Region(True, 0, 1, 1)


def test_every_crop_of_a_frame_runs_in_one_engine_call_and_a_thousand_boxes_in_bounded_batches():
    """The fake engine answers by brightness: each region's answer is its crop's, in order; 8 regions are
    one call; 1,000 boxes (a hundred outside the frame) are batches of at most 32, each skipped one says why."""
    fake = FakeBackend(["dark", "mid", "bright"], scores=by_brightness(3), size=(16, 16))
    frame = np.zeros((1080, 1920, 3), np.uint8)
    boxes, expected = [], []
    for i, value in enumerate((20, 128, 240, 240, 20, 128, 20, 240)):
        x = 40 + i * 220
        frame[300:500, x:x + 150] = value
        boxes.append((x, 300, x + 150, 500))
        expected.append({20: "dark", 128: "mid", 240: "bright"}[value])
    with Classifier.from_backend(fake) as clf:
        results = clf.classify_regions(frame, boxes, crop="stretch")
        assert [r.top.label for r in results] == expected and fake.batches == [8]
        assert [(r.crop.left, r.crop.right) for r in results] == [(b[0], b[2]) for b in boxes]
        many = [(0, 0, 10, 10)] * 900 + [(5000, 0, 5010, 10)] * 100
        answers = clf.classify_regions(frame, many)
    assert len(answers) == 1000 and max(fake.batches[1:]) == 32 and sum(fake.batches[1:]) == 900
    assert {r.skipped for r in answers[900:]} == {"outside the frame"} and all(not r.categories for r in answers[900:])
    assert answers[0].to_dict()["crop"] == {"left": 0, "top": 0, "right": 10, "bottom": 10, "fit": "stretch"}


@pytest.fixture(scope="module")
def region_frames(digits):
    """24 frames (12 of 1280×720 and 12 of 1920×1080, scikit-image photos) with 8 held-out digits each, at
    boxes of 24–300 px, two per frame touching its edge."""
    images, labels = digits
    return realdata.pasted_digits(images[1400:], labels[1400:])


POLICIES = ("stretch", "square", "square:1.3,pad", "letterbox", "frigate")


def _keras_on_crops(seed_model, frames, policy):
    """The Keras model's answers on the crops ``policy`` makes, fitted to 32×32 by the runtime's own resize
    (:func:`edgecls.runtime.resize.fit`; its fidelity to INTER_AREA is measured by ``benchmarks.resize``, and
    the crops' geometry is checked against Frigate's rule above). What is left to differ is what this test
    is for: the batching of regions, colour order, normalization and the exported file."""
    from edgecls.runtime.resize import fit

    policy = CropPolicy.parse(policy)
    inputs, truths = [], []
    for frame, boxes, labels in frames:
        for box, label in zip(boxes, labels, strict=True):
            crop = policy.plan(Region(*box), frame.shape[1], frame.shape[0])
            inputs.append(fit(np.ascontiguousarray(cut(frame, crop, policy)[:, :, ::-1]), 32, 32, crop.fit, policy.sample))
            truths.append(label)
    predicted = seed_model.predict(np.stack(inputs).astype(np.float32) / 255.0, verbose=0).argmax(1)
    return predicted, np.array(truths)


@pytest.mark.parametrize("fmt", ["tflite", "onnx"])
def test_real_frames_classify_each_box_like_the_keras_model_under_every_policy(seed_model, seed_export,
                                                                                region_frames, fmt):
    """192 boxes of 24–300 px on 720p and 1080p photos, some at the frame's edge: per policy, the fp32
    file's accuracy on the regions is within 1 point of the Keras model's on the same crops, and the two
    agree on at least 98 % of them."""
    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == (fmt, "fp32"))
    with Classifier.from_path(model) as clf:
        for policy in POLICIES:
            keras_predicted, truths = _keras_on_crops(seed_model, region_frames, policy)
            ours = np.array([int(r.top.label) for frame, boxes, _ in region_frames
                             for r in clf.classify_regions(frame, boxes, crop=policy)])
            assert len(ours) == len(truths) >= 180
            keras_accuracy, accuracy = (keras_predicted == truths).mean(), (ours == truths).mean()
            assert abs(accuracy - keras_accuracy) <= 0.01, (policy, accuracy, keras_accuracy)
            assert (ours == keras_predicted).mean() >= 0.98, policy
            if policy == "stretch":  # the digits fill their boxes: a trained model reads them
                assert keras_accuracy >= 0.85, keras_accuracy


def test_the_stretch_policy_crops_the_region_mediapipe_crops(seed_export, region_frames, tmp_path):
    """The same fp32 ``.tflite`` and boxes. MediaPipe's ``region_of_interest`` (normalized rectangles) answers
    what MediaPipe answers on the crops edgecls' ``stretch`` policy cuts (the same region of the frame);
    ``classify_regions(crop="mediapipe")`` (``stretch`` shrunk by MediaPipe's corner-aligned bilinear warp)
    agrees with it on at least 99 % of the regions (measured here: 192 of 192), and ``stretch`` with its
    default anti-aliased shrink on at least 97 % (it reads large boxes differently from a bilinear warp,
    which flips near-ties: 190 of 192)."""
    from mediapipe_env import mediapipe_regions, mediapipe_top1

    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "fp32"))
    stretch = CropPolicy.parse("stretch")
    jobs, ours, exact, crops = [], [], [], []
    with Classifier.from_path(model) as clf:
        for n, (frame, boxes, _) in enumerate(region_frames):
            path = tmp_path / f"frame{n}.png"
            cv2.imwrite(str(path), frame)
            height, width = frame.shape[:2]
            jobs.append((path, [(x0 / width, y0 / height, x1 / width, y1 / height) for x0, y0, x1, y1 in boxes]))
            exact += [r.top.label for r in clf.classify_regions(frame, boxes, crop="mediapipe")]
            for k, result in enumerate(clf.classify_regions(frame, boxes, crop=stretch)):
                ours.append(result.top.label)
                crops.append(tmp_path / f"crop{n}-{k}.png")
                cv2.imwrite(str(crops[-1]), cut(frame, result.crop, stretch))
    roi = mediapipe_regions(model, jobs, tmp_path)
    precut = [label for label, _ in mediapipe_top1(crops, model)]
    assert len(roi) == len(precut) == len(ours) == len(exact) >= 180
    assert np.mean([a == b for a, b in zip(roi, precut, strict=True)]) >= 0.99
    assert np.mean([a == b for a, b in zip(exact, roi, strict=True)]) >= 0.99
    assert np.mean([a == b for a, b in zip(ours, roi, strict=True)]) >= 0.97


def test_linear_sampling_is_one_bilinear_resize_of_the_crop(seed_export, region_frames):
    """``linear`` (Frigate's ``cv2.resize``): the input is exactly the crop resized bilinear, whichever input
    path (into a batch slot, or alone) makes it; ``warp`` samples the crop at (x·W/w, y·H/h) (MediaPipe's
    corner-to-corner warp); ``area`` differs from both on large boxes."""
    frame, boxes, _ = region_frames[-1]
    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "fp32"))
    with Classifier.from_path(model) as clf:
        pre, spec = clf.preprocessor, clf.card.input
        assert spec.normalization.baked and spec.dtype == "float32"  # input values are grey levels: atol=1 is one
        for text in ("frigate", "mediapipe"):
            policy = CropPolicy.parse(text)
            slots = pre.buffer(len(boxes))
            for slot, box in zip(slots, boxes, strict=True):
                crop = cut(frame, policy.plan(Region(*box), frame.shape[1], frame.shape[0]), policy)
                pre.into(Pixels(crop, "bgr"), slot, sample=policy.sample)
                if policy.sample == "linear":
                    resized = cv2.resize(crop, (spec.width, spec.height), interpolation=cv2.INTER_LINEAR)
                else:  # the destination pixel (x, y) is the crop's bilinear sample at (x·W/w, y·H/h)
                    xs = np.arange(spec.width) * crop.shape[1] / spec.width
                    ys = np.arange(spec.height) * crop.shape[0] / spec.height
                    resized = _bilinear(crop, xs, ys)
                np.testing.assert_allclose(slot, pre(Pixels(resized, "bgr")), atol=1)  # OpenCV's fixed point
                np.testing.assert_array_equal(slot, pre(Pixels(crop, "bgr"), sample=policy.sample))
        big = max(boxes, key=lambda b: b[2] - b[0])
        crop = cut(frame, CropPolicy().plan(Region(*big), frame.shape[1], frame.shape[0]), CropPolicy())
        assert not np.array_equal(pre(Pixels(crop, "bgr")), pre(Pixels(crop, "bgr"), sample="linear"))


def _bilinear(image: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``image`` sampled bilinear at the grid ``xs`` × ``ys`` (edges replicated), rounded to uint8."""
    x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
    fx, fy = (xs - x0)[None, :, None], (ys - y0)[:, None, None]
    x1, y1 = np.minimum(x0 + 1, image.shape[1] - 1), np.minimum(y0 + 1, image.shape[0] - 1)
    img = image.astype(np.float64)
    top = img[y0][:, x0] * (1 - fx) + img[y0][:, x1] * fx
    bottom = img[y1][:, x0] * (1 - fx) + img[y1][:, x1] * fx
    return np.clip(np.round(top * (1 - fy) + bottom * fy), 0, 255).astype(np.uint8)


def test_batched_regions_give_the_scores_of_each_crop_classified_alone(seed_export, region_frames):
    """One engine call for the regions (LiteRT resizes its input to the batch; ONNX Runtime takes it whole)
    scores each crop as classifying it alone does, for every file the export wrote (int8 included)."""
    frame, boxes, _ = region_frames[-1]
    policy = CropPolicy.parse("square:1.2,shift")
    for f in seed_export.files:
        with Classifier.from_path(f.path) as clf:
            together = clf.classify_regions(frame, boxes, crop=policy)
            for result in together:
                alone = clf.scores(cut(frame, result.crop, policy))
                assert result.scores.argmax() == alone.argmax(), f.path
                # dynamic-range files quantize activations per engine call, over the whole batch (ONNX
                # Runtime's DynamicQuantizeLinear): a crop's scores move by a quantization step with its batch
                atol = 5e-3 if f.quantization == "dynamic" else 1e-5
                np.testing.assert_allclose(result.scores, alone, atol=atol, err_msg=str(f.path))


def test_a_crop_inside_the_frame_is_the_box_region_and_the_card_policy_is_the_default(tmp_path, seed_export):
    """A card's ``input.crop`` is the policy when the call names none; a call's overrides it."""
    from edgecls.converters.metadata import embed_card_file
    from edgecls.runtime.card import InputSpec

    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("onnx", "fp32"))
    with Classifier.from_path(model) as clf:
        card = clf.card
    copy = tmp_path / "stretchy.onnx"
    copy.write_bytes(model.read_bytes())
    embed_card_file(copy, card.__class__(**{**card.__dict__, "input": InputSpec(**{**card.input.__dict__,
                                                                                    "crop": "stretch:1,shift"})}))
    frame = np.zeros((200, 300, 3), np.uint8)
    with Classifier.from_path(copy) as clf:
        assert clf.card.input.crop == "stretch:1,shift"
        (by_card,) = clf.classify_regions(frame, [(100, 50, 160, 80)])
        (by_call,) = clf.classify_regions(frame, [(100, 50, 160, 80)], crop="square")
    assert (by_card.crop.width, by_card.crop.height) == (60, 30)
    assert (by_call.crop.width, by_call.crop.height) == (60, 60)
    assert Crop(0, 0, 1, 1, "stretch").to_dict()["fit"] == "stretch"


def test_predict_classifies_the_boxes_of_a_detection_answer(seed_export, region_frames, tmp_path, capsys):
    """``edgecls predict IMAGE --boxes FILE``: a DeepStack detection answer saved as it came; one result per
    box, as the Python API gives; a boxes file that is not boxes is one error naming it; --crop alone is a
    usage error."""
    import json

    from edgecls.cli import main

    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))
    frame, boxes, _ = region_frames[0]
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame)
    saved = tmp_path / "detections.json"
    saved.write_text(json.dumps({"success": True, "predictions": [
        {"label": "digit", "confidence": 0.8, "x_min": a, "y_min": b, "x_max": c, "y_max": d} for a, b, c, d in boxes]}))
    assert main(["predict", str(model), str(image), "--boxes", str(saved), "--crop", "stretch", "--json"]) == 0
    (line,) = capsys.readouterr().out.strip().splitlines()
    answer = json.loads(line)
    with Classifier.from_path(model) as clf:
        expected = clf.classify_regions(str(image), boxes, crop="stretch")
    assert [r["categories"][0]["label"] for r in answer["regions"]] == [r.top.label for r in expected]
    assert [r["box"]["label"] for r in answer["regions"]] == ["digit"] * len(boxes)
    assert main(["predict", str(model), str(image), "--boxes", str(saved)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(boxes) and lines[0].startswith(f"{image} [{boxes[0][0]},{boxes[0][1]},")
    saved.write_text("[[1, 2, 3, 4], [5, 5, 5, 5]]")
    assert main(["predict", str(model), str(image), "--boxes", str(saved)]) == 1
    assert f"error: {saved}: region 1: a box needs x_max > x_min" in capsys.readouterr().err
    assert main(["predict", str(model), str(image), "--crop", "stretch"]) == 2
    assert "--crop applies to regions" in capsys.readouterr().err


@pytest.fixture(scope="module")
def region_video(region_frames, tmp_path_factory):
    """The first eight 720p region frames as an MJPG video (what a camera's recorder keeps) and their boxes."""
    frames = [f for f in region_frames if f[0].shape[1] == 1280][:8]
    path = tmp_path_factory.mktemp("region-video") / "street.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (1280, 720))
    for frame, _, _ in frames:
        writer.write(frame)
    writer.release()
    return path, [boxes for _, boxes, _ in frames]


def test_a_stream_classifies_the_boxes_a_detector_wrote_for_each_frame(seed_export, region_video, tmp_path, capsys):
    """A JSON-lines file keyed by frame (some frames without a line, DeepStack answers and plain boxes mixed)
    or by timestamp, or a callback: each frame's result holds one result per box, as ``classify_regions``
    gives on that decoded frame; with ``every=2`` lines of skipped frames are passed over; a line that goes
    backwards is an error naming the file and the line; the CLI prints the same as JSON lines."""
    import json

    from edgecls.cli import main

    video, boxes = region_video
    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))
    decoded = read_video(video)
    jsonl = tmp_path / "detections.jsonl"
    lines = []
    for index, frame_boxes in enumerate(boxes):
        if index == 3:
            continue  # the detector found nothing in frame 3
        if index % 2:
            lines.append({"frame": index, "predictions": [dict(zip(("x_min", "y_min", "x_max", "y_max"), b, strict=True),
                                                               label="digit") for b in frame_boxes]})
        else:
            lines.append({"frame": index, "boxes": [list(b) for b in frame_boxes]})
    jsonl.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    with Classifier.from_path(model) as clf:
        expected = [[r.top.label for r in clf.classify_regions(frame, frame_boxes, crop="square:1.2")]
                    for frame, frame_boxes in zip(decoded, boxes, strict=True)]
        expected[3] = []
        with clf.stream(video, regions=jsonl, crop="square:1.2") as stream:
            got = [[r.top.label for r in result.regions] for result in stream]
        assert got == expected
        with clf.stream(video, regions=jsonl, crop="square:1.2", every=2) as stream:
            assert [[r.top.label for r in result.regions] for result in stream] == expected[::2]
        by_time = tmp_path / "by-time.jsonl"
        by_time.write_text("".join(json.dumps({"timestamp_ms": i * 100.0 + 3, "boxes": [list(b) for b in bs]}) + "\n"
                                   for i, bs in enumerate(boxes)))
        with clf.stream(video, regions=by_time, crop="square:1.2") as stream:
            timed = [[r.top.label for r in result.regions] for result in stream]
        assert timed[:3] == expected[:3] and timed[4:] == expected[4:]
        with clf.stream(video, regions=lambda index, timestamp_ms, frame: boxes[index][:2], crop="square:1.2") as stream:
            called = [[r.top.label for r in result.regions] for result in stream]
        assert called == [[r.top.label for r in clf.classify_regions(frame, frame_boxes[:2], crop="square:1.2")]
                          for frame, frame_boxes in zip(decoded, boxes, strict=True)]
        backwards = tmp_path / "backwards.jsonl"
        backwards.write_text('{"frame": 2, "boxes": []}\n{"frame": 1, "boxes": []}\n')
        with pytest.raises(RegionError, match=r"backwards.jsonl:2: frame 1 comes after 2"), \
                clf.stream(video, regions=backwards) as stream:
            list(stream)
        for i, line in enumerate(('{"frame": NaN, "boxes": []}', '{"timestamp_ms": 1%s, "boxes": []}' % ("0" * 400))):
            bad = tmp_path / f"bad{i}.jsonl"
            bad.write_text('{"frame": 0, "boxes": []}\n' + line + "\n")
            with pytest.raises(RegionError, match=rf"bad{i}.jsonl:2: (frame|timestamp_ms) must be a finite number"), \
                    clf.stream(video, regions=bad) as stream:
                list(stream)
        with pytest.raises(OptionError, match="smooth and events follow a whole frame"):
            clf.stream(video, regions=jsonl, events=True)
    assert main(["stream", str(model), str(video), "--boxes", str(jsonl), "--crop", "square:1.2", "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()[:-1]]
    assert [[r["categories"][0]["label"] for r in p["regions"]] for p in printed] == expected


def test_explain_maps_the_crop_a_box_gives(seed_export, region_frames, tmp_path, capsys):
    """``edgecls explain --box``: the map covers the crop the policy cuts (a square of the box's longest edge
    by default), answering as ``classify_regions`` does under each policy (its fit and its sampling); a
    box outside the image is an error naming it."""
    import json

    from edgecls.cli import main

    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "fp32"))
    frame, boxes, _ = region_frames[1]
    image = tmp_path / "frame.png"
    cv2.imwrite(str(image), frame)
    box = max(boxes, key=lambda b: b[2] - b[0])  # large: the sampling makes a difference
    for policy in (None, "mediapipe", "letterbox,linear"):
        with Classifier.from_path(model) as clf:
            (expected,) = clf.classify_regions(frame, [box], crop=policy)
        code = main(["explain", str(model), str(image), "-o", str(tmp_path / f"why-{policy}"), "--box",
                     *map(str, box), "--npy", "--json", *(["--crop", policy] if policy else [])])
        assert code == 0
        answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
        assert answer["label"] == expected.top.label, policy
        assert answer["score"] == pytest.approx(expected.top.score, abs=1e-5), policy
        heat = np.load(answer["npy"])
        assert heat.shape == (expected.crop.height, expected.crop.width) and heat.max() > 0
    assert main(["explain", str(model), str(image), "-o", str(tmp_path / "why2"), "--box", "5000", "0", "5100",
                 "10"]) == 1
    assert "--box 5000 0 5100 10: outside the frame" in capsys.readouterr().err


def test_a_live_session_classifies_the_boxes_pushed_with_each_frame():
    """``classify_async(frame, ts, regions=boxes)``: the callback's result holds one result per box, each its
    crop's answer (a fake engine answering by brightness); bad boxes are refused in the caller's thread."""
    import threading

    from edgecls.runtime import StreamError

    fake = FakeBackend(["dark", "bright"], scores=by_brightness(2), size=(8, 8))
    frame = np.zeros((480, 640, 3), np.uint8)
    frame[100:200, 300:400] = 250
    got, first = [], threading.Event()

    def collect(result):
        got.append(result)
        first.set()

    with Classifier.from_backend(fake) as clf, clf.live(collect, crop="stretch") as session:
        session.classify_async(frame, 0.0, regions=[(300, 100, 400, 200), (0, 0, 50, 50)])
        with pytest.raises(RegionError, match="region 0: a box is four numbers"):
            session.classify_async(frame, 1.0, regions=[(1, 2, 3)])
        assert first.wait(60)  # the first frame's result came before the second is pushed: nothing is dropped
        session.classify_async(frame, 2.0)  # closing the session classifies it
    assert [r.top.label for r in got[0].regions] == ["bright", "dark"] and got[0].categories == ()
    assert got[1].regions is None and got[1].top.label == "dark"
    with Classifier.from_backend(FakeBackend(["a", "b"])) as clf, clf.live(lambda r: None, events=True) as session, \
            pytest.raises(StreamError, match="smooth and events follow a whole frame"):
        session.classify_async(frame, 0.0, regions=[(0, 0, 9, 9)])


def test_a_detector_file_still_being_written_is_read_up_to_its_last_whole_line(tmp_path):
    """A detector writing beside a live stream: a frame past the file's end has no regions (yet); a line half
    written is left for later; what the detector appends is read for the frames after it."""
    import json

    from edgecls.runtime.region_feed import JsonlRegions

    path = tmp_path / "live.jsonl"
    path.write_text(json.dumps({"frame": 0, "boxes": [[0, 0, 10, 10]]}) + "\n")
    feed = JsonlRegions(path)
    frame = np.zeros((20, 20, 3), np.uint8)
    try:
        assert feed(0, 0.0, frame) == [Region(0, 0, 10, 10)]
        assert feed(1, 40.0, frame) == []  # nothing written for frame 1 yet
        line = json.dumps({"frame": 2, "boxes": [[5, 5, 15, 15]]})
        with path.open("a") as out:
            out.write(line[:12])  # the detector is in the middle of a line
        assert feed(2, 80.0, frame) == []
        with path.open("a") as out:
            out.write(line[12:] + "\n" + json.dumps({"frame": 3, "boxes": [[1, 1, 2, 2]]}))  # last line unfinished?
        assert feed(3, 120.0, frame) == [Region(1, 1, 2, 2)]  # frame 2's line passed over; 3's is whole JSON
    finally:
        feed.close()
