"""Explanations from the exported model alone: the heat map finds what decides the answer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.errors import OptionError

onnx = pytest.importorskip("onnx")

PATCH = (slice(4, 12), slice(20, 28))
"""The input region (rows, columns of 32×32) whose brightness alone decides the synthetic model's answer."""


def patch_model(path: Path) -> Path:
    """An ONNX classifier of 32×32 RGB images, two classes: "1" when the mean of rows 4-11, columns 20-27 is
    over half brightness, else "0" (softmax of 0 and 6 × (mean - 0.5): the score follows the mean smoothly)."""
    from onnx import TensorProto, helper

    def const(name, values, kind=TensorProto.INT64):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, kind, [len(values)], values))

    nodes = [
        const("starts", [0, PATCH[0].start, PATCH[1].start, 0]), const("ends", [2**31 - 1, PATCH[0].stop, PATCH[1].stop, 3]),
        helper.make_node("Slice", ["image", "starts", "ends"], ["region"]),
        helper.make_node("ReduceMean", ["region"], ["mean"], axes=[1, 2, 3], keepdims=0),
        const("one", [1]), helper.make_node("Unsqueeze", ["mean", "one"], ["m"]),
        const("half", [0.5], TensorProto.FLOAT), const("gain", [6.0], TensorProto.FLOAT),
        const("zero", [0.0], TensorProto.FLOAT),
        helper.make_node("Sub", ["m", "half"], ["centred"]), helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Mul", ["m", "zero"], ["nothing"]),
        helper.make_node("Concat", ["nothing", "logit"], ["logits"], axis=1),
        helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
    ]
    graph = helper.make_graph(nodes, "patch", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 32, 32, 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


@pytest.mark.parametrize("method", ["occlusion", "rise"])
def test_the_heat_map_peaks_on_the_patch_that_decides_the_answer(tmp_path, method):
    model = patch_model(tmp_path / "patch.onnx")
    image = np.full((96, 96, 3), 60, np.uint8)
    rows, cols = slice(PATCH[0].start * 3, PATCH[0].stop * 3), slice(PATCH[1].start * 3, PATCH[1].stop * 3)
    image[rows, cols] = 255
    with Classifier.from_path(model, labels=["dark", "bright"], mean=0.0, std=255.0) as clf:
        explanation = clf.explain(image, method=method)
        assert explanation.label == "bright" and explanation.score > 0.9
        heat = explanation.heatmap
        assert heat.shape == (96, 96) and heat.dtype == np.float32
        y, x = np.unravel_index(np.argmax(heat), heat.shape)
        assert rows.start <= y < rows.stop and cols.start <= x < cols.stop, (method, y, x)
        assert heat[rows, cols].mean() > 5 * max(heat[:, :40].mean(), 1e-6)  # far from the patch: little
        again = clf.explain(image, method=method)
        np.testing.assert_array_equal(again.heatmap, heat)  # the same map twice (RISE is seeded)
        dark = clf.explain(image, method=method, label="dark")
        assert dark.label == "dark" and dark.score < 0.1


def test_bad_explain_settings_are_option_errors(tmp_path):
    with Classifier.from_path(patch_model(tmp_path / "patch.onnx"), labels=["dark", "bright"]) as clf:
        image = np.zeros((32, 32, 3), np.uint8)
        for kwargs, message in (({"method": "gradcam"}, "method must be one of"), ({"label": "cat"}, "not one of"),
                                ({"patch": 0}, "patch must be within"), ({"masks": 0}, "must be ≥ 1")):
            with pytest.raises(OptionError, match=message):
                clf.explain(image, **kwargs)


def test_the_command_writes_a_picture_and_the_raw_map_per_image(capsys, tmp_path):
    import cv2

    from edgecls.cli import main
    from edgecls.sinks.draw import explanation_picture

    model = patch_model(tmp_path / "patch.onnx")
    (tmp_path / "labels.txt").write_text("dark\nbright\n")
    folder = tmp_path / "images"
    folder.mkdir()
    image = np.full((96, 96, 3), 60, np.uint8)
    image[12:36, 60:84] = 255
    cv2.imwrite(str(folder / "a.png"), image)
    (folder / "broken.png").write_bytes(b"not a picture")
    code = main(["explain", str(model), str(folder), "-o", str(tmp_path / "why"), "--labels", str(tmp_path / "labels.txt"),
                 "--mean", "0", "--std", "255", "--npy", "--json"])
    out, err = capsys.readouterr()
    lines = [__import__("json").loads(line) for line in out.splitlines()]
    assert code == 1 and "broken.png" in err  # the unreadable one is reported, the other explained
    good = next(line for line in lines if "error" not in line)
    assert good["label"] == "bright" and good["method"] == "occlusion"
    picture = cv2.imread(good["png"])
    assert picture.shape == (288, 288, 3)  # 96 px enlarged 3× to be legible
    with Classifier.from_path(model, labels=["dark", "bright"], mean=0.0, std=255.0) as clf:
        why = clf.explain(image)
    np.testing.assert_array_equal(np.load(good["npy"]), why.heatmap)
    np.testing.assert_array_equal(picture, explanation_picture(image, why))
    assert sorted(p.name for p in (tmp_path / "why").iterdir()) == ["a.npy", "a.png"]


def test_predict_explains_each_answer(capsys, tmp_path):
    import json

    import cv2

    from edgecls.cli import main
    from edgecls.sinks.draw import explanation_picture

    model = patch_model(tmp_path / "patch.onnx")
    (tmp_path / "labels.txt").write_text("dark\nbright\n")
    image = np.full((96, 96, 3), 60, np.uint8)
    image[12:36, 60:84] = 255
    cv2.imwrite(str(tmp_path / "a.png"), image)
    code = main(["predict", str(model), str(tmp_path / "a.png"), "--labels", str(tmp_path / "labels.txt"),
                 "--mean", "0", "--std", "255", "--json", "--explain", str(tmp_path / "why"), "--explain-method", "rise"])
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines()]
    assert code == 0 and line["categories"][0]["label"] == "bright"
    assert line["explanation"] == str(tmp_path / "why" / "a.png")
    picture = cv2.imread(line["explanation"])
    with Classifier.from_path(model, labels=["dark", "bright"], mean=0.0, std=255.0) as clf:
        why = clf.explain(image, label="bright", method="rise")
    y, x = np.unravel_index(np.argmax(why.heatmap), why.heatmap.shape)
    assert 12 <= y < 36 and 60 <= x < 84  # RISE's map of the answer peaks on the patch, and the picture is it
    np.testing.assert_array_equal(picture, explanation_picture(image, why))


def test_explaining_and_capturing_need_no_tensorflow(tmp_path):
    """TensorFlow, Keras and Ray blocked (sitecustomize): explanations and hard-example capture need one
    runtime extra only."""
    import json
    import subprocess
    import sys

    from builders import blocked_env

    model = patch_model(tmp_path / "patch.onnx")
    code = f"""
import json, sys
import numpy as np
from edgecls.runtime import CaptureOptions, Classifier
image = np.full((64, 64, 3), 60, np.uint8)
image[8:24, 40:56] = 255
unsure = np.full((64, 64, 3), 127, np.uint8)  # the patch at half brightness: 0.5 / 0.5
with Classifier.from_path({str(model)!r}, labels=["dark", "bright"], mean=0.0, std=255.0) as clf:
    e = clf.explain(image, method="rise", masks=100)
    y, x = np.unravel_index(int(np.argmax(e.heatmap)), e.heatmap.shape)
    with clf.stream([image, unsure, image], capture=CaptureOptions({str(tmp_path / "hard")!r})) as stream:
        list(stream)
print(json.dumps({{"label": e.label, "peak": [int(y), int(x)], "tf": "tensorflow" in sys.modules,
                  "written": stream.summary.capture.written}}))
"""
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=blocked_env(tmp_path),
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout)
    assert out["label"] == "bright" and out["tf"] is False
    assert 8 <= out["peak"][0] < 24 and 40 <= out["peak"][1] < 56
    assert out["written"] == 1 and len(list((tmp_path / "hard").glob("*/*.jpg"))) == 1
