"""Classifier behaviour on the TensorFlow-free colour model (ONNX Runtime)."""

import builders
import numpy as np
import pytest

from edgecls.runtime import Classifier, ClassifierOptions, ClassifyOptions
from edgecls.runtime.errors import OptionError

RED, GREEN, BLUE = (0, 0, 255), (0, 255, 0), (255, 0, 0)  # BGR


def solid(bgr, h=30, w=40):
    image = np.zeros((h, w, 3), np.uint8)
    image[:] = bgr
    return image


def test_colors_are_classified(color_model):
    with Classifier.from_path(color_model) as clf:
        assert clf.has_card and clf.labels == builders.COLOR_LABELS and clf.notes == ()
        for bgr, label in ((RED, "red"), (GREEN, "green"), (BLUE, "blue")):
            result = clf.classify(solid(bgr))
            assert result.top.label == label
            assert [c.score for c in result.categories] == sorted((c.score for c in result.categories), reverse=True)
            assert abs(sum(c.score for c in result.categories) - 1.0) < 1e-5
            assert result.timings.total_ms > 0
        assert clf.classify(solid(RED)[:, :, ::-1], color="rgb").top.label == "red"


def test_scores_match_a_numpy_reference(color_model):
    image = np.random.default_rng(1).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    weights = np.array([[1, -1, -1, 0], [-1, 1, -1, 0], [-1, -1, 1, 0]], np.float32) * 0.05
    logits = image[:, :, ::-1].reshape(-1, 3).astype(np.float32).mean(0) @ weights
    expected = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    with Classifier.from_path(color_model) as clf:
        assert np.allclose(clf.scores(image), expected, atol=1e-6)


def test_batch_equals_single(color_model):
    images = [solid(RED), solid(GREEN, 10, 90), solid(BLUE, 64, 8)]
    with Classifier.from_path(color_model) as clf:
        batch = clf.classify_batch(images)
        single = [clf.classify(image) for image in images]
        assert [r.categories for r in batch] == [r.categories for r in single]
        assert clf.classify_batch([]) == []


def test_result_filters(color_model):
    with Classifier.from_path(color_model) as clf:
        image = solid(RED)
        assert len(clf.classify(image, max_results=2).categories) == 2
        assert {c.label for c in clf.classify(image, allowlist=["blue", "green"]).categories} == {"blue", "green"}
        assert "red" not in {c.label for c in clf.classify(image, denylist=["red"]).categories}
        top = clf.classify(image).top.score
        assert [c.label for c in clf.classify(image, score_threshold=top).categories] == ["red"]
        assert clf.classify(image, score_threshold=1.0).top is None
        assert clf.classify(image).to_dict()["categories"][0]["label"] == "red"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_results": 0}, "max_results must be a positive integer"),
        ({"score_threshold": 1.5}, r"score_threshold must be in \[0, 1\]"),
        ({"score_threshold": -0.1}, r"score_threshold must be in \[0, 1\]"),
        ({"score_threshold": 10**400}, r"score_threshold must be a number in \[0, 1\]"),
        ({"allowlist": ["red"], "denylist": ["blue"]}, "mutually exclusive"),
        ({"allowlist": ["purple"]}, "allowlist names labels the model does not have: purple"),
        ({"denylist": "red"}, "must be a list of labels"),
    ],
)
def test_bad_classify_options(color_model, kwargs, message):
    with Classifier.from_path(color_model) as clf, pytest.raises(OptionError, match=message):
        clf.classify(solid(RED), **kwargs)


def test_from_options_with_defaults(color_model):
    options = ClassifierOptions(color_model, classify=ClassifyOptions(max_results=1))
    with Classifier.from_options(options) as clf:
        assert [c.label for c in clf.classify(solid(BLUE)).categories] == ["blue"]


def test_foreign_model_without_card(tmp_path):
    path = builders.color_onnx(tmp_path / "foreign.onnx")
    with Classifier.from_path(path) as clf:
        assert not clf.has_card
        assert clf.labels == ("class_0", "class_1", "class_2", "class_3")
        assert any("pixels scaled to [0, 1]" in note and "labels class_0..class_3" in note for note in clf.notes)
        assert clf.card.input.normalization.baked is False
    # The model wants raw pixels: say so with mean/std; labels come from arguments.
    with Classifier.from_path(path, labels=builders.COLOR_LABELS, mean=0, std=1) as clf:
        assert clf.classify(solid(GREEN)).top.label == "green"
        assert not any("pixels scaled" in note or "labels class_0" in note for note in clf.notes)


def test_nchw_uint8_and_fixed_batch_models(tmp_path):
    for kwargs in ({"layout": "NCHW"}, {"dtype": "uint8"}, {"batch": 1}):
        path = builders.color_onnx(tmp_path / f"m{len(list(tmp_path.iterdir()))}.onnx", **kwargs)
        norm = {} if kwargs.get("dtype") == "uint8" else {"mean": 0, "std": 1}
        with Classifier.from_path(path, labels=builders.COLOR_LABELS, **norm) as clf:
            assert clf.card.input.layout == kwargs.get("layout", "NHWC")
            results = clf.classify_batch([solid(RED), solid(BLUE)])
            assert [r.top.label for r in results] == ["red", "blue"]


def test_option_errors_at_load(color_model):
    with pytest.raises(OptionError, match="3 labels given but the model outputs 4"):
        Classifier.from_path(color_model, labels=["a", "b", "c"])
    with pytest.raises(OptionError, match="normalization is baked"):
        Classifier.from_path(color_model, mean=0, std=1)
    with pytest.raises(OptionError, match="give mean and std together"):
        Classifier.from_path(color_model, mean=0)
    with pytest.raises(OptionError, match="resize must be one of"):
        Classifier.from_path(color_model, resize="zoom")
    with pytest.raises(OptionError, match="num_threads must be a positive integer"):
        Classifier.from_path(color_model, num_threads=0)
    with pytest.raises(OptionError, match="device must be one of"):
        Classifier.from_path(color_model, device="tpu")
    with pytest.raises(OptionError, match="unknown backend 'tensorrt'"):
        Classifier.from_path(color_model, backend="tensorrt")


def test_resize_override(color_model):
    with Classifier.from_path(color_model, resize="letterbox") as clf:
        assert clf.card.input.resize == "letterbox"
        assert clf.classify(solid(RED, 10, 200)).top.label == "red"


def test_concurrent_classify_matches_sequential(color_model):
    rng = np.random.default_rng(2)
    images = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(16)]
    with Classifier.from_path(color_model, num_threads=1) as clf:
        assert builders.concurrent_mismatches(clf, images) == []
