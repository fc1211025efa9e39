"""Hostile model files built by the tests (nothing binary is committed), and a measured CLI run.

Each builder writes a small file that breaks one promise of the runtime when nothing checks it:
a memory bomb, a crash in the engine, a traceback. ``run_cli`` runs ``edgecls`` in a fresh process
started from a small launcher, so the peak RSS from ``wait4`` is the CLI's own (a process started
straight from pytest would report pytest's peak), and kills it after a timeout (a hang is a failure).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

LAUNCH = r"""
import json, os, signal, subprocess, sys
timeout, out, err = float(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "wb") as o, open(err, "wb") as e:
    proc = subprocess.Popen(sys.argv[4:], stdout=o, stderr=e)
    signal.signal(signal.SIGALRM, lambda *_: proc.kill())
    signal.setitimer(signal.ITIMER_REAL, timeout)
    _, status, usage = os.wait4(proc.pid, 0)
    signal.setitimer(signal.ITIMER_REAL, 0)
print(json.dumps({"status": status, "peak_mb": usage.ru_maxrss * 1024 / 1e6}))
"""


@dataclass
class CliRun:
    exit_code: int | None
    """None when the process died of a signal (a crash, or killed as hung)."""
    signal: int | None
    stdout: str
    stderr: str
    peak_mb: float


def run_cli(args: list[str], cwd: Path, timeout: float = 120) -> CliRun:
    """``python -m edgecls ARGS`` from ``cwd``, measured (see the module docstring)."""
    return run_measured([sys.executable, "-m", "edgecls", *args], cwd, timeout)


def run_measured(argv: list[str], cwd: Path, timeout: float = 120) -> CliRun:
    """``argv`` from ``cwd`` through the small launcher: exit code or signal, output, peak RSS."""
    out, err = cwd / ".cli-stdout", cwd / ".cli-stderr"
    done = subprocess.run([sys.executable, "-c", LAUNCH, str(timeout), str(out), str(err), *argv],
                          capture_output=True, text=True, cwd=cwd, timeout=timeout + 60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    status = result["status"]
    return CliRun(os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
                  os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                  out.read_text(errors="replace"), err.read_text(errors="replace"), result["peak_mb"])


def onnx_model(path: Path, *, classes: int = 4, declared: list | None = None, size: tuple = ("H", "W"),
               card: str | None = None, fail_at_run: bool = False, fail_when_bright: bool = False,
               name: str = "image") -> Path:
    """A mean-colour classifier (NHWC, raw 0-255 input, any input size by default) with ``classes``
    real outputs, an output declared as ``declared`` (default ``[N, classes]``), an optional card
    text in ``metadata_props``; ``fail_at_run``: a Reshape that fails inside ONNX Runtime's run;
    ``fail_when_bright``: a Gather whose index (the mean pixel / 32) is out of range on images brighter
    than mid-grey, fine on dark ones (a blank frame passes the service's load check)."""
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(size=(3, classes)).astype(np.float32) * 0.01
    nodes = [helper.make_node("ReduceMean", [name, "axes"], ["mean"], keepdims=0),
             helper.make_node("MatMul", ["mean", "w"], ["logits"])]
    inits = [numpy_helper.from_array(weights, "w"), numpy_helper.from_array(np.array([1, 2], np.int64), "axes")]
    if fail_when_bright:
        nodes += [helper.make_node("ReduceMean", ["mean", "channel_axis"], ["bright"], keepdims=0),
                  helper.make_node("Div", ["bright", "step"], ["steps"]),
                  helper.make_node("Cast", ["steps"], ["index"], to=TensorProto.INT64),
                  helper.make_node("Gather", ["gains", "index"], ["gain"], axis=0),
                  helper.make_node("Unsqueeze", ["gain", "channel_axis"], ["gain2"]),
                  helper.make_node("Mul", ["logits_raw", "gain2"], ["logits"])]
        nodes[1].output[0] = "logits_raw"
        inits += [numpy_helper.from_array(np.array([1], np.int64), "channel_axis"),
                  numpy_helper.from_array(np.array(32.0, np.float32), "step"),
                  numpy_helper.from_array(np.ones(4, np.float32), "gains")]
    if fail_at_run:
        nodes.append(helper.make_node("Reshape", ["logits", "shape"], ["odd"]))
        nodes.append(helper.make_node("Reshape", ["odd", "back"], ["logits2"]))
        inits += [numpy_helper.from_array(np.array([7, -1], np.int64), "shape"),
                  numpy_helper.from_array(np.array([-1, classes], np.int64), "back")]
    nodes.append(helper.make_node("Softmax", ["logits2" if fail_at_run else "logits"], ["probs"], axis=-1))
    # Reshape to its own Shape: the output's size is data-dependent for shape inference (as a TopK's is),
    # so the declared shape below is all the engine knows before running
    nodes += [helper.make_node("Shape", ["probs"], ["probs_shape"]),
              helper.make_node("Reshape", ["probs", "probs_shape"], ["scores"])]
    graph = helper.make_graph(nodes, "hostile",
                              [helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", *size, 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, declared or ["N", classes])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    if card is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = "edgecls.card", card
    path.write_bytes(model.SerializeToString())
    return path


def with_card_text(model: Path, out: Path, text: str) -> Path:
    """The ONNX ``model`` with its card replaced by ``text`` (any text, valid or not)."""
    import onnx

    proto = onnx.load(str(model))
    entries = [e for e in proto.metadata_props if e.key != "edgecls.card"]
    del proto.metadata_props[:]
    proto.metadata_props.extend(entries)
    entry = proto.metadata_props.add()
    entry.key, entry.value = "edgecls.card", text
    out.write_bytes(proto.SerializeToString())
    return out


def card_text(classes: int = 4, labels: list[str] | None = None, **input_fields) -> str:
    """A card for :func:`onnx_model` (labels ``c0``, ``c1``, ... unless given) with ``input_fields``
    overriding the input section."""
    spec = {"height": 8, "width": 8, "channels": 3, "color": "rgb",
            "normalization": {"baked": True, "mean": [0.0], "std": [1.0]}} | input_fields
    return json.dumps({"schema_version": 1, "labels": labels or [f"c{i}" for i in range(classes)], "input": spec,
                       "output": {"num_classes": classes}})


def append_zip(model: Path, out: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """``model`` with a zip of ``members`` appended (as edgecls appends its card)."""
    out.write_bytes(model.read_bytes())
    with zipfile.ZipFile(out, "a", compression=compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out


def patch_zip_member(path: Path, *, flags: int | None = None, method: int | None = None,
                     corrupt: bool = False) -> Path:
    """Set the general-purpose flags or the compression method of every entry of the appended zip (local
    and central headers alike), or overwrite the card's compressed bytes with junk (the last local entry
    named ``edgecls_card.json``)."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            if flags is not None:
                data[at + flag_at:at + flag_at + 2] = struct.pack("<H", flags)
            if method is not None:
                data[at + method_at:at + method_at + 2] = struct.pack("<H", method)
            at = data.find(signature, at + 4)
    if corrupt:
        card_local = data.rindex(b"edgecls_card.json", 0, data.rindex(b"PK\x01\x02"))  # in a local header
        at = data.rindex(b"PK\x03\x04", 0, card_local)
        size, = struct.unpack_from("<I", data, at + 18)
        name_len, extra_len = struct.unpack_from("<HH", data, at + 26)
        start = at + 30 + name_len + extra_len
        data[start:start + min(16, size)] = b"\xff" * min(16, size)  # the member's own bytes, not past them
    path.write_bytes(bytes(data))
    return path


def claim_zip64_entries(path: Path) -> Path:
    """Set the appended zip's end record to 0xFFFF entries, as a zip of 65,535 or more (a million) says."""
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 12] = b"\xff\xff\xff\xff"
    path.write_bytes(bytes(data))
    return path


def claim_entries(path: Path, entries: int) -> Path:
    """Set the appended zip's end record to claim ``entries`` entries (its central directory unchanged:
    :mod:`zipfile` reads every entry the directory holds, whatever the count says)."""
    data = bytearray(path.read_bytes())
    end = data.rindex(b"PK\x05\x06")
    data[end + 8:end + 12] = struct.pack("<HH", entries, entries)
    path.write_bytes(bytes(data))
    return path


def tflite_writing_its_input(model: Path, out: Path) -> Path:
    """``model`` with its first operator's output index changed to the graph input (the 2-byte SIGSEGV)."""
    from ai_edge_litert import schema_py_generated as schema

    fb = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model.read_bytes(), 0))
    graph = fb.subgraphs[0]
    op = graph.operators[len(graph.operators) // 2]
    op.outputs = np.array(op.outputs, copy=True)  # a view of the file's bytes until copied
    op.outputs[0] = graph.inputs[0]
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    out.write_bytes(bytes(builder.Output()))
    return out


def external_data_model(folder, location: str):
    """A one-MatMul ONNX model whose weight lives in an external file named ``location``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.ones((3, 2), np.float32), "W")
    weight.ClearField("raw_data")
    weight.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        entry = weight.external_data.add()
        entry.key, entry.value = key, value
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "W"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], [weight])
    path = folder / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


# -- hostile images -----------------------------------------------------------------------
def jpeg(size=(16, 16), progressive=False) -> bytes:
    image = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    flags = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(".jpg", image, flags)[1].tobytes()


def jpeg_with_junk_before_its_size(width=20000, height=20000) -> bytes:
    """A small JPEG declaring ``width``×``height``, one junk byte before its frame header: decoders
    skip the byte, a header reader that stops at it sees no size."""
    data = bytearray(jpeg())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    return bytes(data[:sof] + b"\x00" + data[sof:])


def tiff_bomb(width=20000, height=20000) -> bytes:
    """A gray TIFF of ``width``×``height`` black pixels in one deflated strip: a few hundred KB that
    decode to ``width × height`` bytes (three times that as BGR). Compressed in chunks, so building
    it costs no more memory than the file."""
    import zlib

    packer, row_chunk = zlib.compressobj(9), bytes(width * 100)
    strip = b"".join(packer.compress(row_chunk) for _ in range(height // 100)) + packer.flush()
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 8), (262, 3, 1), (273, 4, 0),
            (277, 3, 1), (278, 4, height), (279, 4, len(strip))]
    ifd_at = 8
    data_at = ifd_at + 2 + 12 * len(tags) + 4
    entries = b"".join(struct.pack("<HHI", tag, kind, 1) + struct.pack("<I" if kind == 4 else "<HH",
                                                                        *((data_at,) if tag == 273 else
                                                                          (value,) if kind == 4 else (value, 0)))
                       for tag, kind, value in tags)
    return b"II*\x00" + struct.pack("<I", ifd_at) + struct.pack("<H", len(tags)) + entries + bytes(4) + strip
