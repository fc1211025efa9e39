"""Pixel normalization as users write it: detection through augmentation and nested blocks, and the
check on labelled images that a wrapper cannot fool (issue: every model users actually write exports).

Each model is a real digits classifier whose normalization sits where Keras users put it; the
exported files must classify the held-out digits as well as the Keras model does on raw pixels.
"""

import json

import builders
import numpy as np
import pytest

from edgecls.cli import main

pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def digits64():
    return builders.digits_rgb(64)


def _folders(tmp_path, images, labels):
    train = builders.write_image_folder(tmp_path / "train", images[:1400], labels[:1400])
    val = builders.write_image_folder(tmp_path / "val", images[1400:], labels[1400:])
    return train, val


def _accuracy(model, images, labels, scale=None) -> float:
    x = images.astype("float32")
    if scale is not None:
        x = scale(x)
    return float((np.asarray(model(x, training=False)).argmax(1) == labels).mean())  # augmentation off


@pytest.fixture(scope="module")
def tutorial(tmp_path_factory, digits64):
    """Keras' tutorial shape (augmentation block, Rescaling(1/255), CNN) at 64×64, saved as .keras."""
    images, labels = digits64
    model = builders.preprocessing_model("tutorial", 64, images[:1400], labels[:1400], epochs=8)
    root = tmp_path_factory.mktemp("tutorial")
    path = root / "model.keras"
    model.save(path)
    train, val = _folders(root, images, labels)
    return path, train, val, _accuracy(model, images[1400:], labels[1400:])


def _cli(capsys, *argv):
    code = main(list(map(str, argv)))
    out, err = capsys.readouterr()
    return code, out, err


def test_tutorial_model_exports_with_defaults_and_keeps_its_accuracy(capsys, tutorial, tmp_path):
    path, train, val, keras_accuracy = tutorial
    assert keras_accuracy > 0.6  # a trained classifier; chance is 0.1
    code, out, err = _cli(capsys, "export", path, "-o", tmp_path / "out", "--quantize", "fp32,int8",
                          "--calib", train, "--val", val, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["pixels"]["chosen"] == "raw" and report["normalization"]["name"] == "raw"
    assert any("Rescaling layer 'rescaling'" in note for note in report["notes"]), report["notes"]
    assert report["pixels"]["accuracies"]["raw"] == pytest.approx(keras_accuracy, abs=0.003)  # one image
    assert report["pixels"]["accuracies"]["unit"] < 0.3  # the double normalization the old export baked
    assert len(report["files"]) == 4
    for f in report["files"]:  # every file within the default check; the int8 ones may have climbed the ladder
        assert f["passed"] and f["validation"]["top1_agreement"] >= (0.999 if f["quantization"] == "fp32" else 0.98)
        assert abs(f["validation"]["accuracy"] - keras_accuracy) <= (0.005 if f["quantization"] == "fp32" else 0.02)
        climbed = f["quantization_ladder"]
        assert f["rung"] == ("int8" if climbed is None else climbed["rung"]) or f["quantization"] != "int8", f
        if climbed is not None:  # it says so: the rung chosen, and why
            assert any("the quantization ladder chose" in n for n in report["notes"]) and climbed["reason"]


def test_tutorial_model_with_a_wrong_preset_fails_naming_the_better_one(capsys, tutorial, tmp_path):
    path, _, val, _ = tutorial
    code, out, err = _cli(capsys, "export", path, "-o", tmp_path / "out", "--formats", "tflite",
                          "--pixels", "unit", "--val", val)
    assert code == 1 and out == ""
    assert err.startswith("error: pixels unit gives the Keras model") and "'raw'" in err, err
    assert not (tmp_path / "out").exists()  # failed before anything was written


@pytest.mark.parametrize("kind, layer, presets", [
    ("nested", "Rescaling layer 'preprocess/rescale'", {"raw"}),
    ("normalization", "Normalization layer 'normalize'", {"raw"}),
    # symmetric and imagenet both centre grey digits near 0 at a similar scale: the model trained on one
    # scores within a few images under the other, and auto takes whichever scores higher on this model
    ("symmetric", None, {"symmetric", "imagenet"}),
    ("ops", None, {"raw"}),
])
def test_auto_finds_the_normalization(kind, layer, presets, digits, digits_folders, tmp_path):
    from edgecls.converters import export

    images, labels = digits
    model = builders.preprocessing_model(kind, 32, images[:1400], labels[:1400])
    scale = (lambda x: x / 127.5 - 1.0) if kind == "symmetric" else None
    keras_accuracy = _accuracy(model, images[1400:], labels[1400:], scale)
    assert keras_accuracy > 0.8
    report = export(model, tmp_path, name=kind, formats=["tflite"], validation=digits_folders[1])
    chosen = report.pixels.chosen
    assert chosen in presets and report.normalization.name == chosen
    if layer:
        assert any(layer in note for note in report.notes), report.notes
    else:  # no normalizing layer: unit was the first guess, and the labelled images overruled it
        assert report.pixels.accuracies[chosen] - report.pixels.accuracies["unit"] >= 0.02
        assert report.pixels.reason.startswith(f"auto: {chosen} gives")
    # the preset chosen classifies as the one the model was trained with (the best of them: at least as well)
    assert report.pixels.accuracies[chosen] >= keras_accuracy - 0.003
    (file,) = report.files
    assert file.validation.accuracy == pytest.approx(report.pixels.accuracies[chosen], abs=0.003)


def test_near_chance_fails_and_few_labelled_images_skip_the_check(digits, digits_folders, tmp_path):
    import keras

    from edgecls.converters import ExportError, export

    images, _ = digits
    builders.seeded()
    # a model that ignores its input (Rescaling by 0: one answer for every image) is at chance under every
    # preset, whatever its random weights; an untrained CNN only usually is
    inputs = keras.Input((32, 32, 3))
    untrained = keras.Model(inputs, builders.small_cnn_body(keras, keras.layers.Rescaling(0.0)(inputs)))
    with pytest.raises(ExportError, match="near chance on the 397 labelled validation images"):
        export(untrained, tmp_path / "a", formats=["tflite"], validation=digits_folders[1])
    few = builders.write_image_folder(tmp_path / "few", images[1400:1420], np.arange(20) % 10)
    report = export(untrained, tmp_path / "b", formats=["tflite"], validation=few)
    assert report.pixels is None
    assert any("pixel normalization not checked" in note for note in report.notes)
