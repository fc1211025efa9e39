"""The runtime never imports TensorFlow, and a missing engine is a clear error."""

import json
import subprocess
import sys
import textwrap

import pytest

BLOCKER = """
import importlib.abc, sys
class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"blocked for the test: {name}")
        return None
sys.meta_path.insert(0, _Block())
"""


def run_python(code: str, blocked: tuple[str, ...] = ()) -> dict:
    script = f"BLOCKED = {blocked!r}\n" + BLOCKER + textwrap.dedent(code)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_classifying_leaves_tensorflow_out(seed_exports, color_model):
    _, paths, _ = seed_exports
    models = [str(paths["tflite_int8"]), str(paths["onnx_fp32"]), str(color_model)]
    out = run_python(f"""
        import json, sys
        import numpy as np
        import edgecls.runtime
        from edgecls.runtime import Classifier
        labels = []
        for path in {models!r}:
            with Classifier.from_path(path) as clf:
                labels.append(clf.classify(np.zeros((40, 40, 3), np.uint8)).top.label)
        print(json.dumps({{"tf": "tensorflow" in sys.modules, "keras": "keras" in sys.modules, "labels": labels}}))
    """)
    assert out["tf"] is False and out["keras"] is False
    assert len(out["labels"]) == 3


def test_runtime_works_with_tensorflow_blocked(seed_exports):
    _, paths, _ = seed_exports
    out = run_python(f"""
        import json
        import numpy as np
        from edgecls.runtime import Classifier
        with Classifier.from_path({str(paths["tflite_fp32"])!r}) as clf:
            print(json.dumps({{"label": clf.classify(np.zeros((32, 32, 3), np.uint8)).top.label,
                              "engine": clf.backend.name}}))
    """, blocked=("tensorflow", "keras"))
    assert out["engine"] == "litert" and out["label"] in [str(i) for i in range(10)]


@pytest.mark.parametrize(
    "blocked, suffix, extra",
    [
        (("ai_edge_litert", "tflite_runtime", "tensorflow"), "tflite", "tflite"),
        (("onnxruntime", "openvino"), "onnx", "onnx"),  # either runs an .onnx file
    ],
)
def test_missing_engine_names_the_extra(seed_exports, blocked, suffix, extra):
    _, paths, _ = seed_exports
    path = paths[f"{suffix}_fp32"]
    out = run_python(f"""
        import json
        from edgecls.runtime import Classifier, BackendUnavailableError
        try:
            Classifier.from_path({str(path)!r})
        except BackendUnavailableError as exc:
            print(json.dumps({{"message": str(exc), "extra": exc.extra}}))
    """, blocked=blocked)
    assert out["extra"] == extra
    assert f"pip install 'edgecls[{extra}]'" in out["message"]


def test_package_imports_lazily():
    out = run_python("""
        import json, sys
        import edgecls
        before = sorted(m for m in ("edgecls.runtime", "edgecls.converters", "tensorflow") if m in sys.modules)
        edgecls.Classifier
        after = sorted(m for m in ("edgecls.runtime", "edgecls.converters", "tensorflow") if m in sys.modules)
        export = edgecls.export
        with_export = sorted(m for m in ("edgecls.converters", "tensorflow", "keras") if m in sys.modules)
        print(json.dumps({"before": before, "after": after, "export": export.__module__, "with_export": with_export}))
    """)
    assert out["before"] == []
    assert out["after"] == ["edgecls.runtime"]
    assert out["export"] == "edgecls.converters.pipeline"
    assert out["with_export"] == ["edgecls.converters"]  # TensorFlow only once a conversion runs


CONVERTER_STACK = ("tensorflow", "keras", "tf_keras", "tf2onnx", "onnx", "sympy", "rich")


@pytest.mark.parametrize(
    "fmt, blocked_engine",
    [("tflite", ("onnxruntime",)), ("onnx", ("ai_edge_litert", "tflite_runtime"))],
)
def test_cli_runtime_commands_with_one_engine_and_no_tensorflow(seed_export, digits_folders, fmt, blocked_engine):
    """An environment with only .[tflite] or only .[onnx]: TensorFlow, the converters' stack and the other engine
    cannot be imported, and predict, info, eval and bench still work."""
    model = next(f.path for f in seed_export.files if (f.format, f.quantization) == (fmt, "int8"))
    _, val = digits_folders
    image = next((val / "4").glob("*.png"))
    commands = [
        ["predict", str(model), str(image), "--json"],
        ["info", str(model), "--json"],
        ["eval", str(model), str(val), "--json"],
        ["bench", str(model), "--runs", "5", "--warmup", "1", "--json"],
        # the text forms too: tables without rich (it comes with the converters' extra)
        ["predict", str(model), str(image)],
        ["info", str(model)],
        ["eval", str(model), str(val)],
        ["bench", str(model), "--runs", "5", "--warmup", "1", "--no-cold-start"],
    ]
    out = run_python(f"""
        import contextlib, io, json, sys
        from edgecls.cli import main
        results = []
        for argv in {commands!r}:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                code = main(argv)
            results.append({{"code": code, "out": buffer.getvalue()}})
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in {CONVERTER_STACK!r})
        print(json.dumps({{"results": results, "leaked": leaked}}))
    """, blocked=CONVERTER_STACK + blocked_engine)
    assert out["leaked"] == []
    codes = [r["code"] for r in out["results"]]
    assert codes == [0] * 8, out["results"]
    predict, info, evaluation, bench, *text = (r["out"] for r in out["results"])
    assert json.loads(predict)["categories"][0]["label"] == "4"
    assert json.loads(info)["card"]["provenance"]["format"] == fmt
    assert json.loads(evaluation)[0]["top1"] > 0.9
    assert json.loads(bench)["results"][0]["stages"]["end_to_end"]["count"] == 5
    text_predict, text_info, text_eval, text_bench = text
    assert ": 4=" in text_predict, text_predict
    assert "card: embedded" in text_info
    assert "top-1" in text_eval and "confusion matrix" in text_eval and "precision" in text_eval
    assert "p50 ms" in text_bench and model.name in text_bench


def test_tensorflow_lite_is_the_last_fallback(seed_exports):
    """Without ai-edge-litert and tflite-runtime, TensorFlow's own interpreter runs the file alike."""
    _, paths, _ = seed_exports
    path = str(paths["tflite_int8"])
    code = f"""
        import json
        import numpy as np
        from edgecls.runtime import Classifier
        frames = [np.random.default_rng(i).integers(0, 256, (48, 40, 3), dtype=np.uint8) for i in range(5)]
        with Classifier.from_path({path!r}) as clf:
            print(json.dumps({{"engine": clf.backend.name, "scores": [clf.scores(f).tolist() for f in frames]}}))
    """
    fallback = run_python(code, blocked=("ai_edge_litert", "tflite_runtime"))
    litert = run_python(code)
    assert (fallback["engine"], litert["engine"]) == ("tensorflow", "litert")
    import numpy as np

    assert np.abs(np.array(fallback["scores"]) - np.array(litert["scores"])).max() <= 1 / 256 + 1e-6
