"""``edgecls export --frigate DIR``: a model folder Frigate's custom classification reads, answering on
Frigate's own crops as edgecls answers with ``--crop frigate``; models that cannot meet the contract are
refused with the reason."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from edgecls import realdata
from edgecls.converters import ExportError, ExportOptions, export
from edgecls.runtime import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def frigate_export(seed_model, digits_folders, tmp_path_factory):
    """The seed CNN behind a 224×224 input (a 7×7 average pool down to its 32×32), exported to TFLite int8
    with ``--frigate`` and ``--crop frigate``."""
    import keras

    inputs = keras.Input((224, 224, 3))
    pooled = keras.layers.AveragePooling2D(7)(keras.layers.Rescaling(1.0 / 255.0)(inputs))
    model = keras.Model(inputs, seed_model(pooled))
    train, val = digits_folders
    out = tmp_path_factory.mktemp("frigate")
    report = export(model, out / "files", formats=["tflite"], quantize=["int8"], calibration=train, validation=val,
                    name="digits", frigate=out / "frigate", crop="frigate", pixels="raw")
    return report, out / "frigate"


def _frigate_label(interpreter, labels, frame_bgr, box):
    """What Frigate's processor does with one box, from the description of its contract: a square of the
    box's longest edge centred on it and moved inside the frame, resized to 224×224 RGB, fed as uint8, the
    output divided by its sum."""
    x0, y0, x1, y1 = box
    height, width = frame_bgr.shape[:2]
    side = max(x1 - x0, y1 - y0)
    left = min(max(0, int(x0 + (x1 - x0) / 2 - side / 2)), max(0, width - side))
    top = min(max(0, int(y0 + (y1 - y0) / 2 - side / 2)), max(0, height - side))
    crop = cv2.cvtColor(frame_bgr[top:top + side, left:left + side], cv2.COLOR_BGR2RGB)
    tensor = cv2.resize(crop, (224, 224))[None]
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor)
    interpreter.invoke()
    scores = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0].astype(np.float64)
    probabilities = scores / scores.sum()
    return labels[int(probabilities.argmax())]


def test_frigate_reads_the_folder_and_answers_on_its_crops_as_edgecls_does(frigate_export, digits):
    from ai_edge_litert.interpreter import Interpreter

    report, folder = frigate_export
    assert report.ok and report.frigate == folder
    labels = (folder / "labelmap.txt").read_text().splitlines()
    assert labels == [str(i) for i in range(10)] == list(report.labels)
    assert (report.labels_path.read_text().splitlines() == labels and report.labels_path.name == "digits_labels.txt")
    tflite = next(f.path for f in report.files if f.format == "tflite")
    assert (folder / "model.tflite").read_bytes() == tflite.read_bytes()
    interpreter = Interpreter(model_path=str(folder / "model.tflite"), num_threads=2)
    interpreter.allocate_tensors()
    details = interpreter.get_input_details()[0]
    assert details["dtype"] == np.uint8 and list(details["shape"]) == [1, 224, 224, 3]
    images, truths = digits
    frames = realdata.pasted_digits(images[1400:], truths[1400:], frames=4, seed=1)
    theirs, ours, truth = [], [], []
    with Classifier.from_path(folder / "model.tflite") as clf:
        assert clf.card.input.crop == "square:1,shift,linear"  # --crop frigate, in the card: the default of every call
        for frame, boxes, digit_labels in frames:
            theirs += [_frigate_label(interpreter, labels, frame, box) for box in boxes]
            ours += [r.top.label for r in clf.classify_regions(frame, boxes)]
            truth += [str(d) for d in digit_labels]
    assert len(ours) >= 60
    agreement = np.mean([a == b for a, b in zip(ours, theirs, strict=True)])
    accuracy = np.mean([a == b for a, b in zip(ours, truth, strict=True)])
    frigate_accuracy = np.mean([a == b for a, b in zip(theirs, truth, strict=True)])
    assert agreement >= 0.95, (agreement, accuracy, frigate_accuracy)
    assert accuracy >= frigate_accuracy - 0.03, (accuracy, frigate_accuracy)


def test_models_that_cannot_meet_frigates_contract_are_refused_with_the_reason(seed_h5, digits_folders, tmp_path):
    train, _ = digits_folders
    with pytest.raises(ExportError, match=r"Frigate feeds 224x224 RGB crops; this model takes 32x32x3"):
        export(seed_h5, tmp_path / "a", formats=["tflite"], quantize=["int8"], calibration=train,
               frigate=tmp_path / "frigate")
    assert not (tmp_path / "frigate").exists() and not (tmp_path / "a").exists()
    with pytest.raises(ExportError, match="export tflite with int8"):
        ExportOptions(quantize=["fp32"], frigate=tmp_path / "frigate")
    with pytest.raises(ExportError, match="unknown crop mode 'wide'"):
        ExportOptions(crop="wide")
