"""The model-format registry: built-ins survive a format registered first; one entry owns a format."""

import subprocess
import sys

CUSTOM_FIRST = """
from edgecls.converters.formats.base import FORMATS, get_format, quantization_names, register_format

class Custom:
    name, suffix, quantizations, options_type = "custom", ".cst", {"fp32": "float32"}, dict
    def prepare(self, job): pass
    def convert(self, job, quantization): return b""
    def embed(self, data, card): return data

register_format(Custom())  # before any lookup of a built-in
print(get_format("tflite").suffix, get_format("onnx").suffix, get_format("custom").suffix, list(FORMATS))
print(",".join(quantization_names()))
"""


def test_a_format_registered_first_does_not_hide_the_builtins():
    done = subprocess.run([sys.executable, "-c", CUSTOM_FIRST], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.strip().splitlines()
    assert first == ".tflite .onnx .cst ['tflite', 'onnx', 'custom']"
    assert second == "fp32,fp16,dynamic,int8"


def test_each_format_owns_its_quantizations_options_and_card_writer(tmp_path):
    import pytest

    from edgecls.converters import ExportError
    from edgecls.converters.formats.base import format_for_suffix, get_format
    from edgecls.converters.formats.onnx_format import OnnxOptions
    from edgecls.converters.metadata import embed_card_file
    from edgecls.converters.pipeline import ExportOptions

    onnx = get_format("onnx")
    assert format_for_suffix(".ONNX") is onnx and onnx.options_type is OnnxOptions
    assert OnnxOptions().opset == 17 and set(onnx.quantizations) == {"fp32", "fp16", "dynamic", "int8"}
    with pytest.raises(ExportError, match="tflite has no quantization 'int4'; choose from fp32, fp16, dynamic, int8"):
        ExportOptions(formats=["tflite"], quantize=["int4"])
    with pytest.raises(ExportError, match="unknown format 'coreml'; choose one of: tflite, onnx"):
        ExportOptions(formats=["coreml"])
    bad = tmp_path / "m.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ExportError, match=r"m.onnx: not an ONNX model"):
        embed_card_file(bad, None)
    with pytest.raises(ExportError, match=r"cannot embed a model card in .pt files"):
        embed_card_file(tmp_path / "m.pt", None)


def test_cli_choices_come_from_the_registries(capsys):
    from edgecls.cli import main
    from edgecls.converters.normalization import PIXEL_PRESETS
    from edgecls.runtime.backends import registered
    from edgecls.runtime.backends.base import DEVICES

    assert main(["export", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "Comma list of tflite, onnx." in text and "Comma list of fp32, fp16, dynamic, int8." in text
    assert f"[auto|{'|'.join(PIXEL_PRESETS)}]" in text and "[stretch|crop|letterbox]" in text
    assert main(["predict", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(spec.name in text for spec in registered()) and f"[{'|'.join(DEVICES)}]" in text


def test_a_formats_own_options_travel_in_its_options_object(seed_h5, tmp_path):
    """ONNX-only options live in ``OnnxOptions``: given typed or as keywords (``opset=13`` routed there), the
    ONNX file is written at that opset and the report records each format's options; a wrong type is refused."""
    import json

    import onnx
    import pytest

    from edgecls.converters import ExportError, ExportOptions, export
    from edgecls.converters.formats.onnx_format import OnnxOptions
    from edgecls.converters.formats.tflite_format import TFLiteOptions

    opts = ExportOptions.from_keywords({"formats": ["onnx"], "opset": 13, "per_channel": True})
    assert opts.options_for("onnx") == OnnxOptions(opset=13, per_channel=True)
    assert opts.options_for("tflite") == TFLiteOptions()
    with pytest.raises(ExportError, match=r"format_options\['onnx'\] must be a OnnxOptions, got TFLiteOptions"):
        ExportOptions(format_options={"onnx": TFLiteOptions()})
    report = export(seed_h5, tmp_path, formats=["onnx", "tflite"], opset=13, labels=[str(i) for i in range(10)])
    onnx_file = next(f.path for f in report.files if f.format == "onnx")
    assert {o.domain: o.version for o in onnx.load(onnx_file).opset_import}[""] == 13
    recorded = json.loads(report.path.read_text())["options"]["format_options"]
    assert recorded == {"onnx": {"opset": 13, "per_channel": False}, "tflite": {}}
