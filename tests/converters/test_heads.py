"""Every head users train gives scores users can act on (issue 29): the heads as the tutorials write them,
trained on real digits; every exported file outputs probabilities; disagreeing or undecidable evidence
stops with an error that ``--head`` settles; files with raw logits warn once.

The properties asserted hold for any reasonably trained model (no accident of one training run): the
files' scores equal the Keras model's probabilities (softmax / sigmoid / [1 − p, p] of its outputs), their
accuracy is the Keras model's within a margin (int8 within the 1-point budget the export keeps), and
MediaPipe reads the same answer from the fp32 ``.tflite``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from builders import (
    ATTRIBUTES,
    HEAD_SHAPES,
    attribute_matrix,
    binary_labels,
    head_model,
    seeded,
    write_attribute_list,
    write_image_folder,
)

from edgecls.runtime import Classifier

KIND = {"tutorial-logits": "logits", "binary-logit": "binary-logit", "transfer-binary": "binary-logit",
        "binary-sigmoid": "binary-sigmoid", "softmax-layer": "softmax", "nested-head": "softmax",
        "multilabel-sigmoid": "multilabel-sigmoid"}


class Task:
    """One shape's data: the validation set on disk (as users give it), its images and truths."""

    def __init__(self, shape: str, root: Path, digits) -> None:
        images, labels = digits
        self.images, digits_val = images[1400:], labels[1400:]
        self.shape = shape
        if shape == "multilabel-sigmoid":
            self.val = write_attribute_list(root / "val", self.images, digits_val)
            self.calib = write_attribute_list(root / "calib", images[:300], labels[:300])
            self.truth = attribute_matrix(digits_val)
        elif "binary" in shape:
            write_image_folder(root / "val", self.images, binary_labels(digits_val), ("low", "high"))
            write_image_folder(root / "calib", images[:300], binary_labels(labels[:300]), ("low", "high"))
            self.val, self.calib, self.truth = root / "val", root / "calib", binary_labels(digits_val)
        else:
            write_image_folder(root / "val", self.images, digits_val)
            write_image_folder(root / "calib", images[:300], labels[:300])
            self.val, self.calib, self.truth = root / "val", root / "calib", digits_val

    @property
    def multi_label(self) -> bool:
        return self.shape == "multilabel-sigmoid"

    def accuracy(self, scores: np.ndarray) -> float:
        """Top-1 accuracy, or (multi-label) the macro F1 at 0.5."""
        from edgecls.runtime.metrics import macro_f1

        if self.multi_label:
            return macro_f1(scores >= 0.5, self.truth)
        return float((scores.argmax(1) == self.truth).mean())


_TRAINED: dict[str, tuple] = {}


def trained(shape: str, tmp_path_factory, digits):
    """The shape's Keras model (trained once per run), saved as a ``.keras`` file, and its task."""
    if shape not in _TRAINED:
        images, labels = digits
        root = tmp_path_factory.mktemp(shape)
        model = head_model(shape, images[:1400], labels[:1400], seed=seeded())
        model.save(root / "model.keras")
        _TRAINED[shape] = (model, root / "model.keras", Task(shape, root, digits))
    return _TRAINED[shape]


def keras_probabilities(model, task: Task) -> np.ndarray:
    from edgecls.converters.heads import to_probabilities

    return to_probabilities(KIND[task.shape], model.predict(task.images.astype("float32"), verbose=0))


def _export(path: Path, task: Task, out: Path, quantize: list[str]):
    from edgecls.converters import export

    return export(path, out, quantize=quantize, calibration=task.calib, validation=task.val, max_drop=1.0,
                  positive="high" if "binary" in task.shape else None)


def _check_files(report, model, task: Task) -> dict[Path, np.ndarray]:
    """Every file: probabilities equal to Keras' within 1e-3 (fp32), rows summing to 1 (single-label), and
    accuracy within 0.5 pt of Keras (fp32) or 1 pt (int8). Returns each file's scores."""
    reference = keras_probabilities(model, task)
    keras_accuracy = task.accuracy(reference)
    assert report.head.kind == KIND[task.shape], report.head
    out = {}
    for exported in report.files:
        with Classifier.from_path(exported.path) as clf:
            scores = clf.scores_batch(list(task.images), color="rgb")
            assert clf.card.output.multi_label == task.multi_label and not clf.notes
            quantized = clf.backend.output.quantization
        # an int8 file rounds each probability to its output's step (the .tflite's uint8 tensor; the .onnx
        # dequantizes a [0, 1] range in 1/255 steps inside): the row's sum to within classes × step / 2
        step = (quantized.scale if quantized else 1 / 255) if exported.quantization == "int8" else 0.0
        out[exported.path] = scores
        name = exported.path.name
        if not task.multi_label:
            assert np.abs(scores.sum(1) - 1).max() <= scores.shape[1] * step / 2 + 1e-4, name
        if exported.quantization == "fp32":
            assert np.abs(scores - reference).max() < 1e-3, name
            assert abs(task.accuracy(scores) - keras_accuracy) <= 0.005, name
        else:
            assert task.accuracy(scores) >= keras_accuracy - 0.01 - 1e-9, name
    return out


@pytest.mark.parametrize("shape", ["tutorial-logits", "binary-logit", "multilabel-sigmoid"])
def test_tutorial_heads_export_as_probabilities(tmp_path_factory, digits, shape, tmp_path):
    """The three heads new users meet first, fp32 files (the default run; every shape and int8 below)."""
    model, path, task = trained(shape, tmp_path_factory, digits)
    report = _export(path, task, tmp_path / "out", ["fp32"])
    assert report.ok
    _check_files(report, model, task)
    card = json.loads(report.to_json())
    assert card["head"]["kind"] == KIND[shape] and card["output"]["kind"] == (
        "multi-label" if task.multi_label else "single-label")
    if "binary" in shape:
        assert report.labels == ["low", "high"]
    with Classifier.from_path(report.files[0].path) as clf:
        assert clf.card.provenance.head["kind"] == KIND[shape] and clf.card.provenance.head["evidence"]


@pytest.mark.slow
@pytest.mark.parametrize("shape", HEAD_SHAPES)
def test_every_head_in_every_file_and_mediapipe_agrees(tmp_path_factory, digits, shape, tmp_path):
    """Every shape × TFLite and ONNX × fp32 and int8; MediaPipe reads the fp32 ``.tflite``'s answer."""
    from mediapipe_env import mediapipe_top1

    model, path, task = trained(shape, tmp_path_factory, digits)
    report = _export(path, task, tmp_path / "out", ["fp32", "int8"])
    assert report.ok and len(report.files) == 4
    scores = _check_files(report, model, task)
    tflite = next(f.path for f in report.files if f.path.name.endswith("_fp32.tflite"))
    pictures = []
    for i in range(0, len(task.images), 40):  # ten held-out images
        pictures.append(tmp_path / f"val{i}.png")
        cv2.imwrite(str(pictures[-1]), task.images[i][:, :, ::-1])
    with Classifier.from_path(tflite) as clf:
        labels = clf.labels
    for picture, (label, score) in zip(pictures, mediapipe_top1(pictures, tflite), strict=True):
        ours = scores[tflite][int(picture.stem[3:])]
        assert label == labels[int(ours.argmax())] and abs(score - float(ours.max())) < 1e-3, (picture, label, score)


def _untrained(keras, activation, loss=None):
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Rescaling(1 / 255)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(4, activation=activation, name="head")(x))
    if loss is not None:
        model.compile("adam", loss)
    return model


def test_conflicting_and_undecidable_heads_stop_and_head_settles_them(tmp_path, capsys):
    """A softmax compiled with a from_logits loss (evidence that disagrees), and a linear Dense(4) saved
    without a loss (logits or multi-label logits?): one error line naming what was seen and --head; with
    --head the export runs and the card says what was chosen."""
    import keras

    from edgecls.cli import main

    cases = {
        "conflict": (_untrained(keras, "softmax", keras.losses.SparseCategoricalCrossentropy(from_logits=True)),
                     ["disagrees", "layer: Dense 'head' ends in softmax", "from_logits=True"], "softmax"),
        "undecidable": (_untrained(keras, None), ["cannot tell", "logits or multilabel-logit"], "logits"),
    }
    for name, (model, says, settle) in cases.items():
        path = tmp_path / f"{name}.keras"
        model.save(path)
        assert main(["export", str(path), "-o", str(tmp_path / name), "--formats", "onnx"]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and all(s in errors[0] for s in says) and "--head" in errors[0], errors
        assert not (tmp_path / name).exists()
        assert main(["export", str(path), "-o", str(tmp_path / name), "--formats", "onnx", "--head", settle]) == 0
        capsys.readouterr()
        with Classifier.from_path(tmp_path / name / f"{name}_fp32.onnx") as clf:
            head = clf.card.provenance.head
            assert head["kind"] == settle and head["chosen_by"] == "head option"
            scores = clf.scores(np.full((16, 16, 3), 200, np.uint8))
            assert abs(scores.sum() - 1) < 1e-5  # a softmax baked after the logits too


def _logits_onnx(path: Path) -> Path:
    from onnx import TensorProto, helper, numpy_helper

    weights = np.array([[4.0, -3.0, 0.5], [-2.0, 5.0, 0.1], [1.0, 1.0, -6.0]], np.float32) / 25
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["image", "axes"], ["mean"], keepdims=0),
         helper.make_node("MatMul", ["mean", "w"], ["logits"])], "logits",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 8, 8, 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])],
        [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([1, 2], np.int64), "axes")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path.write_bytes(model.SerializeToString())
    return path


def _logits_tflite(path: Path) -> Path:
    import keras
    import tensorflow as tf

    seeded()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(3, kernel_initializer=keras.initializers.RandomNormal(0, 30))(x))
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.mark.parametrize("build", [_logits_onnx, _logits_tflite], ids=["onnx", "tflite"])
def test_raw_logits_without_a_card_warn_once_not_per_image(tmp_path, build):
    from hostile import run_cli

    model = build(tmp_path / ("m.onnx" if build is _logits_onnx else "m.tflite"))
    pictures = []
    for i in range(6):
        pictures.append(tmp_path / f"{i}.png")
        cv2.imwrite(str(pictures[-1]), np.full((8, 8, 3), (40 * i, 255 - 40 * i, 90), np.uint8))
    run = run_cli(["predict", str(model), *map(str, pictures)], tmp_path)
    assert run.exit_code == 0, run.stderr
    warnings = [line for line in run.stderr.splitlines() if "not probabilities" in line]
    assert len(warnings) == 1 and str(model) in warnings[0] and "softmax applied" in warnings[0], run.stderr
    assert len(run.stdout.splitlines()) == 6
    with Classifier.from_path(model) as clf:  # in Python: the note, once, whatever the number of images
        for picture in pictures:
            assert abs(clf.scores(picture).sum() - 1) < 1e-5
        assert sum("not probabilities" in n for n in clf.notes) == 1


def test_a_card_that_says_probabilities_of_raw_logits_warns_once(tmp_path, caplog):
    from builders import card_for

    from edgecls.converters.metadata import embed_card_file

    model = _logits_onnx(tmp_path / "m.onnx")
    embed_card_file(model, card_for(("a", "b", "c"), size=8))  # a hand-made card: scores "probabilities"
    with caplog.at_level("WARNING", logger="edgecls"), Classifier.from_path(model) as clf:
        for value in (10, 120, 250):
            clf.classify(np.full((8, 8, 3), value, np.uint8))
    warned = [r.getMessage() for r in caplog.records if "not probabilities" in r.getMessage()]
    assert len(warned) == 1 and "its card says they are" in warned[0] and "'logits'" in warned[0]


def test_files_of_earlier_versions_keep_working(seed_export, digits_folders):
    """A card without the output kind (every file exported before heads) reads as single-label, no warning."""
    from edgecls.runtime.card import ModelCard

    path = next(f.path for f in seed_export.files if f.path.name.endswith("_fp32.onnx"))
    with Classifier.from_path(path) as clf:
        old = json.loads(clf.card.to_json())
        for key in ("kind", "thresholds"):
            old["output"].pop(key)
        old["provenance"].pop("head")
        card = ModelCard.from_dict(old)
        assert card.output.kind == "single-label" and not card.output.multi_label
        image = next(digits_folders[1].rglob("*.png"))
        assert len(clf.classify(image).categories) == 5 and not clf.notes


# -- a multi-label model in every command ---------------------------------------------------------------


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory, digits):
    """The multi-label model's fp32 ONNX export (thresholds chosen for F1), its task and ten pictures."""
    from edgecls.converters import export

    _, path, task = trained("multilabel-sigmoid", tmp_path_factory, digits)
    out = tmp_path_factory.mktemp("multilabel-export")
    report = export(path, out, formats=["onnx"], validation=task.val, thresholds="f1")
    pictures = out / "pictures"
    pictures.mkdir()
    for i in range(10):
        cv2.imwrite(str(pictures / f"{i:02d}.png"), task.images[i * 7][:, :, ::-1])
    return report.files[0].path, task, pictures


def test_f1_thresholds_are_in_the_card_and_the_report(multilabel):
    from edgecls.runtime.metrics import f1_thresholds

    path, task, _ = multilabel
    with Classifier.from_path(path) as clf:
        thresholds = clf.card.output.thresholds
        scores = clf.scores_batch(list(task.images), color="rgb")
    assert clf.card.labels == ATTRIBUTES and len(thresholds) == 4
    np.testing.assert_allclose(thresholds, f1_thresholds(scores, task.truth), atol=2e-3)


def test_a_multi_label_answer_is_every_label_over_its_threshold(multilabel, capsys):
    from edgecls.cli import main

    path, _, pictures = multilabel
    with Classifier.from_path(path) as clf:
        thresholds = np.asarray(clf.card.output.thresholds)
        expected = {}
        for picture in sorted(pictures.iterdir()):
            result = clf.classify(picture, max_results=1)  # top-k does not cut a label set
            present = [clf.labels[i] for i in np.argsort(-result.scores) if result.scores[i] >= thresholds[i]]
            assert list(result.labels) == present and result.multi_label
            expected[str(picture)] = present
    assert any(len(v) >= 2 for v in expected.values()) and any(len(v) == 1 for v in expected.values())
    assert main(["predict", str(path), str(pictures), "--json"]) == 0
    answers = {a["image"]: a["labels"] for a in map(json.loads, capsys.readouterr().out.splitlines())}
    assert answers == expected


def test_eval_reports_per_label_metrics_and_macro_f1(multilabel, capsys):
    from edgecls.cli import main
    from edgecls.runtime.metrics import average_precision, label_counts

    path, task, _ = multilabel
    assert main(["eval", str(path), str(task.val), "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    with Classifier.from_path(path) as clf:
        scores = clf.scores_batch(list(task.images), color="rgb")
        predicted = scores >= np.asarray(clf.card.output.thresholds)
    counts = label_counts(predicted, task.truth)
    assert result["kind"] == "multi-label" and result["images"] == len(task.images)
    assert [row["label"] for row in result["per_label"]] == list(ATTRIBUTES)
    np.testing.assert_allclose([row["f1"] for row in result["per_label"]], counts.f1, atol=1e-4)
    assert result["macro_f1"] == pytest.approx(counts.f1.mean(), abs=1e-6)
    assert result["mean_average_precision"] == pytest.approx(np.nanmean(average_precision(scores, task.truth)), abs=1e-6)
    assert result["exact_match"] == pytest.approx((predicted == task.truth).all(1).mean(), abs=1e-6)
    assert 0.8 < result["macro_f1"] <= 1.0  # a trained model, far from chance
    assert main(["eval", str(path), str(task.val)]) == 0
    shown = capsys.readouterr().out
    assert "macro F1" in shown and "per label" in shown and "round" in shown


def test_stream_events_say_which_labels_turned_on_and_off(multilabel):
    path, _, pictures = multilabel
    with Classifier.from_path(path) as clf:
        every = [tuple(sorted(r.categories[i].label for i in range(len(r.categories))))
                 for r in clf.stream(str(pictures))]
        with clf.stream(str(pictures), events=True) as stream:
            events = list(stream)
    present: set[str] = set()
    replayed = {}
    for event in events:
        present = (present | set(event.on)) - set(event.off)
        replayed[event.index] = tuple(sorted(present))
        assert tuple(sorted(c.label for c in event.categories)) == replayed[event.index]
        assert event.as_dict()["on"] == list(event.on)
    changes = [i for i in range(len(every)) if every[i] != (every[i - 1] if i else ())]
    assert sorted(replayed) == changes and len(changes) >= 2


def test_explain_maps_each_label_present(multilabel, tmp_path, capsys):
    from edgecls.cli import main

    path, _, pictures = multilabel
    picture = next(p for p in sorted(pictures.iterdir())
                   if len(Classifier.from_path(path).classify(p).labels) >= 2)
    with Classifier.from_path(path) as clf:
        present = clf.classify(picture).labels
    assert main(["explain", str(path), str(picture), "-o", str(tmp_path / "why"), "--json"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["label"] for line in lines] == list(present)
    assert sorted(p.name for p in (tmp_path / "why").iterdir()) == sorted(f"{picture.stem}-{label}.png"
                                                                          for label in present)


def test_capture_keeps_frames_with_a_score_near_a_threshold(multilabel, tmp_path):
    from edgecls.runtime import CaptureOptions

    path, _, pictures = multilabel
    with Classifier.from_path(path) as clf:
        thresholds = np.asarray(clf.card.output.thresholds)
        near = [i for i, p in enumerate(sorted(pictures.iterdir()))
                if (np.abs(clf.scores(p) - thresholds) < 0.3).any()]
        with clf.stream(str(pictures), capture=CaptureOptions(tmp_path / "hard", near_threshold=0.3,
                                                              queue_size=64)) as stream:
            list(stream)
    sidecars = [json.loads(p.read_text()) for p in (tmp_path / "hard").glob("*/*.json")]
    assert sorted(s["frame"] for s in sidecars) == near and 0 < len(near) < 10
    assert all(s["reasons"] == ["threshold"] and s["near"] for s in sidecars)


def test_batch_and_serve_give_the_labels_present(multilabel, tmp_path, capsys):
    import pyarrow.parquet as pq
    from serving import server

    from edgecls.cli import main

    path, task, pictures = multilabel
    with Classifier.from_path(path) as clf:
        expected = {str(p): list(clf.classify(p).labels) for p in sorted(pictures.iterdir())}
    assert main(["batch", str(path), str(pictures), "-o", str(tmp_path / "out")]) == 0
    capsys.readouterr()
    table = pq.read_table(tmp_path / "out").to_pylist()
    assert {row["path"]: row["labels"] for row in table} == expected
    assert main(["batch", str(path), str(task.val), "-o", str(tmp_path / "listed")]) == 0  # the CSV list as input
    capsys.readouterr()
    listed = pq.read_table(tmp_path / "listed").to_pylist()
    assert len(listed) == len(task.images) and all(row["error"] is None for row in listed)
    with server(str(path)) as client:
        for picture, labels in expected.items():
            data = Path(picture).read_bytes()
            scene = client.post("/v1/vision/scene", files={"image": ("x.png", data, "image/png")}).json()
            assert [x["label"] for x in scene["labels"]] == labels
            assert scene["label"] == (labels[0] if labels else None)
            assert client.post("/v1/classify", content=data, headers={"Content-Type": "image/png"}).json()["labels"] \
                == labels


@pytest.mark.parametrize("text, says", [
    ("path,labels\nimages/00000.png,big nope\n", "line 2: label 'nope' is not among the model's labels"),
    ("path,labels\nimages/00000.png,big\nimages/missing.png,even\n", "line 3:"),
    ("path,labels\nimages/00000.png,big\n,even\n", "line 3 has no image path"),
    ("file,tags\nimages/00000.png,big\n", "must name the columns 'path' and 'labels'"),
    ("path,labels\n", "lists no images"),
], ids=["unknown label", "missing file", "empty row", "no header", "no rows"])
def test_a_bad_label_list_is_one_error_naming_the_list_and_line(multilabel, tmp_path, capsys, text, says):
    from edgecls.cli import main

    path, task, _ = multilabel
    listed = task.val.parent / f"bad-{abs(hash(text))}.csv"  # beside images/, as users keep one
    listed.write_text(text)
    assert main(["eval", str(path), str(listed)]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(listed) in errors[0] and says in errors[0], errors
    _, keras_path, _ = _TRAINED["multilabel-sigmoid"]
    (tmp_path / "labels.txt").write_text("\n".join(ATTRIBUTES))
    assert main(["export", str(keras_path), "-o", str(tmp_path / "out"), "--formats", "onnx", "--val",
                 str(listed), "--labels", str(tmp_path / "labels.txt")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and says in errors[0] and not (tmp_path / "out").exists()
