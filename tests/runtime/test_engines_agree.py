"""The same images give the same top-1 and close scores on LiteRT, ONNX Runtime and Keras."""

import builders
import numpy as np
import pytest

from edgecls.runtime import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _scores(path, images_rgb, **kwargs):
    with Classifier.from_path(path, **kwargs) as clf:
        return np.stack([clf.scores(image, color="rgb") for image in images_rgb])


@pytest.fixture(scope="module")
def reference(seed_exports):
    model, paths, (images, labels) = seed_exports
    keras_scores = model.predict(images.astype(np.float32), verbose=0)
    return paths, images, labels, keras_scores


def test_float_exports_match_keras(reference):
    paths, images, _, keras_scores = reference
    for name in ("tflite_fp32", "onnx_fp32"):
        scores = _scores(paths[name], images)
        assert np.array_equal(scores.argmax(1), keras_scores.argmax(1)), name
        assert np.abs(scores - keras_scores).max() < 1e-4, name


def test_backends_agree_with_each_other(reference):
    paths, images, _, _ = reference
    tflite = _scores(paths["tflite_fp32"], images)
    onnx = _scores(paths["onnx_fp32"], images)
    assert np.array_equal(tflite.argmax(1), onnx.argmax(1))
    assert np.abs(tflite - onnx).max() < 1e-4


def test_int8_export_stays_close_to_keras(reference):
    paths, images, labels, keras_scores = reference
    scores = _scores(paths["tflite_int8"], images)
    agreement = (scores.argmax(1) == keras_scores.argmax(1)).mean()
    assert agreement >= 0.98
    assert np.abs(scores - keras_scores).mean() < 0.01
    assert abs((scores.argmax(1) == labels).mean() - (keras_scores.argmax(1) == labels).mean()) <= 0.01


def test_int8_uses_the_uint8_fast_path(reference):
    paths, images, _, _ = reference
    with Classifier.from_path(paths["tflite_int8"]) as clf:
        assert clf.card.input.dtype == "uint8"
        tensor = clf.preprocess(images[0], color="rgb")
        assert tensor.dtype == np.uint8 and np.array_equal(tensor, images[0])


def test_batch_on_litert_equals_single(reference):
    paths, images, _, _ = reference
    with Classifier.from_path(paths["tflite_int8"]) as clf:
        batch = clf.classify_batch(list(images[:7]), color="rgb")
        single = [clf.classify(image, color="rgb") for image in images[:7]]
    assert [r.categories for r in batch] == [r.categories for r in single]


def test_encoded_files_classify_like_arrays(reference, tmp_path):
    import cv2

    paths, images, _, _ = reference
    path = tmp_path / "digit.png"
    cv2.imwrite(str(path), images[3][:, :, ::-1])
    with Classifier.from_path(paths["onnx_fp32"]) as clf:
        assert clf.classify(path).categories == clf.classify(images[3], color="rgb").categories


def test_litert_shared_across_threads_matches_sequential(reference):
    paths, images, _, _ = reference
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf:
        assert builders.concurrent_mismatches(clf, images[:12], color="rgb", calls=30) == []
