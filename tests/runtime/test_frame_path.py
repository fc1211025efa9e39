"""The per-frame path: ``classify`` writes the input straight into the engine's buffer through reused per-thread
buffers (nothing the size of the frame or the input is allocated per call), 8-bit scores come from one table,
top-k needs no full sort."""

import tracemalloc

import numpy as np
import pytest

from edgecls.bench.measure import camera_frames
from edgecls.runtime import Classifier
from edgecls.runtime.card import InputSpec, Normalization, Quantization
from edgecls.runtime.images import Pixels
from edgecls.runtime.options import ClassifyOptions
from edgecls.runtime.postprocess import Postprocessor
from edgecls.runtime.preprocess import Preprocessor
from edgecls.runtime.tensors import TensorInfo
from tests import builders

SPECS = {
    "uint8 rgb, raw pixels": InputSpec(224, 224, dtype="uint8"),
    "int8 rgb, quantized": InputSpec(96, 128, dtype="int8", quantization=Quantization(0.0078, -1),
                                     normalization=Normalization(False, (127.5,), (127.5,))),
    "float32 bgr, normalized": InputSpec(64, 64, color="bgr",
                                         normalization=Normalization(False, (103.9, 116.8, 123.7), (58.4,))),
}
SIZES = [(640, 480), (641, 481), (1280, 720), (1400, 1000), (300, 200), (100, 90)]


@pytest.mark.parametrize("name", SPECS)
def test_into_writes_what_the_reference_path_makes(name):
    """Every route of ``into`` (shrunk by halvings, enlarged, bilinear, warped; BGR and RGB frames; the colour
    converted before or after the resize; a lookup table or none) writes exactly the input ``__call__`` makes,
    and again on the next call, from its reused buffers."""
    pre = Preprocessor(SPECS[name])
    slot = pre.buffer(1)[0]
    for width, height in SIZES:
        frame = camera_frames((width, height), count=1, seed=width)[0]
        for order in ("bgr", "rgb"):
            for sample in ("area", "linear", "warp"):
                pixels = Pixels(frame, order)
                slot[...] = 0
                pre.into(pixels, slot, sample=sample)
                assert np.array_equal(slot, pre(pixels, sample=sample)), (width, height, order, sample)


@pytest.mark.parametrize("name", SPECS)
def test_into_many_writes_what_into_makes(name):
    """A batch of crops of one frame (views, some larger and some smaller than the input, squares and not),
    resized one by one and coloured and looked up in one call each over the batch, is bit for bit what
    ``into`` writes crop by crop, for BGR and RGB frames and every way to shrink, on each call of the reused
    staging buffers (batches of 5, 13 (two groups) and 3)."""
    pre = Preprocessor(SPECS[name])
    frame = camera_frames((1280, 720), count=1, seed=7)[0]
    boxes = [(0, 0, 300, 200), (100, 50, 164, 114), (600, 300, 610, 330), (900, 100, 1280, 720),
             (40, 400, 300, 700), (500, 10, 560, 50), (1200, 600, 1280, 720), (200, 200, 650, 420),
             (0, 0, 1280, 720), (640, 0, 900, 90), (30, 30, 31, 31), (700, 500, 1100, 700), (10, 600, 90, 719)]
    for order in ("bgr", "rgb"):
        for sample in ("area", "linear", "warp"):
            for n in (5, 13, 3):
                crops = [frame[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes[:n]]
                many = pre.buffer(n)
                many[...] = 0
                pre.into_many(crops, order, many, sample=sample)
                one = pre.buffer(1)[0]
                for crop, got in zip(crops, many, strict=True):
                    pre.into(Pixels(crop, order), one, sample=sample)
                    assert np.array_equal(got, one), (order, sample, n, crop.shape)


@pytest.mark.parametrize("fmt", ["tflite_int8", "onnx_fp32"])
def test_classify_allocates_nothing_the_size_of_a_frame(seed_exports, fmt):
    """After the first frames of a size, one ``classify`` of a 640×480 frame (921,600 bytes; its first halving
    alone 230,400) holds a few kB at its peak (its result; now and then a few tens of kB as Python grows a free
    list), and 2,000 more calls leave nothing held (Python's tuple free list, which tracemalloc counts, fills
    during the first 2,000)."""
    frames = camera_frames((640, 480), count=4)
    with Classifier.from_path(seed_exports[1][fmt], num_threads=1) as clf:
        expected = [clf.classify(f).categories for f in frames]
        tracemalloc.start()
        try:
            peaks = []
            for i in range(40):
                held = tracemalloc.get_traced_memory()[0]
                tracemalloc.reset_peak()
                assert clf.classify(frames[i % 4]).categories == expected[i % 4]
                peaks.append(tracemalloc.get_traced_memory()[1] - held)
            for i in range(2100):
                clf.classify(frames[i % 4])
            start = tracemalloc.get_traced_memory()[0]
            for i in range(2000):
                clf.classify(frames[i % 4])
            growth = tracemalloc.get_traced_memory()[0] - start
        finally:
            tracemalloc.stop()
    assert sorted(peaks)[len(peaks) // 2] < 16 * 1024 and max(peaks) < 64 * 1024, peaks
    assert growth < 16 * 1024  # under 8 bytes a call: not one object kept per frame


def test_litert_classify_writes_the_interpreters_input_itself(seed_exports, monkeypatch):
    """``classify`` never hands LiteRT an input to copy (``set_tensor``): it wrote the interpreter's own input
    tensor, which holds the preprocessed image, and the scores are the batch path's."""
    _, paths, (images, _) = seed_exports
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf:
        batch = clf.scores_batch(list(images[:20]), color="rgb")
        interpreter = clf.backend._interpreter
        monkeypatch.setattr(interpreter, "set_tensor", lambda *a: pytest.fail("classify copied its input"))
        for image, expected in zip(images[:20], batch, strict=True):
            assert np.array_equal(clf.classify(image, color="rgb").scores, expected)
            written = interpreter.get_tensor(interpreter.get_input_details()[0]["index"])
            assert np.array_equal(written[0], clf.preprocess(image, color="rgb"))


def _reference_top(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    order = sorted(range(len(scores)), key=lambda i: (-float(scores[i]), i))[:k]  # by score, ties by lower index
    return [(i, float(scores[i])) for i in order]


@pytest.mark.parametrize("classes", [6, 64, 65, 1000])
def test_top_k_is_the_stable_head_of_a_full_sort(classes):
    """Partitioned (over 64 classes) or sorted in Python, with ties broken by the lower index, one row or
    a matrix: the categories are the first k of a full stable sort."""
    labels = [f"c{i}" for i in range(classes)]
    post = Postprocessor(builders.card_for(labels), TensorInfo("out", (1, classes), np.dtype(np.float32)))
    rng = np.random.default_rng(classes)
    rows = (rng.integers(0, 40, (12, classes)) / 40).astype(np.float32)  # many ties
    for k in sorted({1, 5, classes}):
        options = ClassifyOptions(max_results=k)
        for row in rows:
            got = [(c.index, c.score) for c in post.categories(row, options)]
            assert got == _reference_top(row, k)
            assert all(c.label == labels[c.index] for c in post.categories(row, options))
        assert post.categories_rows(rows, options) == [post.categories(row, options) for row in rows]
        floor = ClassifyOptions(max_results=k, score_threshold=0.5)
        assert post.categories_rows(rows, floor) == [post.categories(row, floor) for row in rows]
        assert all(c.score >= 0.5 for row in post.categories_rows(rows, floor) for c in row)
    denied = ClassifyOptions(max_results=3, denylist=frozenset({"c0", "c1"}))
    for row in rows:
        row = row.copy()
        row[:2] = 1.0
        assert [c.index for c in post.categories(row, denied)] == [i + 2 for i, _ in _reference_top(row[2:], 3)]


@pytest.mark.parametrize("dtype", [np.uint8, np.int8])
def test_8_bit_scores_come_from_one_table_equal_to_dequantizing(dtype):
    output = TensorInfo("out", (1, 10), np.dtype(dtype), Quantization(1 / 256, -128 if dtype == np.int8 else 0))
    post = Postprocessor(builders.card_for([str(i) for i in range(10)]), output)
    info = np.iinfo(dtype)
    raw = np.random.default_rng(0).integers(info.min, info.max + 1, (3, 10)).astype(dtype)
    assert np.array_equal(post.scores(raw), output.dequantize(raw))
