"""``edgecls info``."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import load_classifier
from edgecls.commands.text import echo, json_line


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@click.option("--backend", default="auto", show_default=True,
              help="auto, litert/tflite, onnxruntime/onnx or openvino/ov.")
def info(model: Path, as_json: bool, backend: str) -> None:
    """Show a model's card, tensors and the backend that runs it (an export folder: what its deploy.json picked).

    \b
    Example:
      edgecls info model_int8.tflite --json
    """
    from edgecls.runtime.deploy import read_deployment

    deployment = read_deployment(model) if model.is_dir() else None
    with load_classifier(model, backend=backend) as clf:
        b = clf.backend
        model = clf.path  # a folder's: the file its deploy.json names
        data = {
            "path": str(model),
            "size_bytes": model.stat().st_size,
            "backend": b.name,
            "device": b.device,
            "accelerators": list(b.accelerators),
            "has_card": clf.has_card,
            "input": {"name": b.input.name, "shape": list(b.input.shape), "dtype": b.input.dtype_name,
                      "quantization": None if b.input.quantization is None else vars(b.input.quantization)},
            "output": {"name": b.output.name, "shape": list(b.output.shape), "dtype": b.output.dtype_name,
                       "quantization": None if b.output.quantization is None else vars(b.output.quantization)},
            "tflite_metadata": _tflite_metadata(model),
            "card": clf.card.to_dict(),
            "notes": list(clf.notes),
            "deploy": None if deployment is None else deployment.to_dict(),
        }
    if as_json:
        click.echo(json_line(data, indent=2))
        return
    for line in human_lines(model, data, clf):
        echo(line)
    if deployment is not None:
        echo(f"  deploy.json: {deployment.summary()}, on {deployment.machine.get('cpu', '?')} "
             f"({deployment.machine.get('cores', '?')} cores); {len(deployment.candidates)} candidates measured")


def _quant(q) -> str:
    return "" if q is None else f", quantized: scale {q.scale:.6g}, zero point {q.zero_point}"


def human_lines(model: Path, data: dict, clf) -> list[str]:
    """``edgecls info`` without ``--json``: the tensors with dtype and quantization, and what the card
    says (preprocessing, where the file came from, how it was quantized and validated)."""
    b, card = clf.backend, clf.card
    spec, prov = card.input, card.provenance
    norm = spec.normalization
    lines = [f"{model}  ({data['size_bytes'] / 1e6:.2f} MB)  backend={b.name} device={b.device}",
             f"  input  {b.input.name}: {list(b.input.shape)} {b.input.dtype_name}{_quant(b.input.quantization)}",
             f"  output {b.output.name}: {list(b.output.shape)} {b.output.dtype_name}{_quant(b.output.quantization)}",
             f"  card: {'embedded' if clf.has_card else 'none (inferred)'}; {len(card.labels)} labels: "
             f"{', '.join(card.labels[:10])}{' ...' if len(card.labels) > 10 else ''}",
             f"  preprocessing: {spec.width}x{spec.height} {spec.color.upper()} {spec.layout}, resize {spec.resize}, "
             + (f"normalization baked into the graph (mean {list(norm.mean)}, std {list(norm.std)})" if norm.baked
                else f"normalized by the runtime: (pixel - {list(norm.mean)}) / {list(norm.std)}")
             + f", scores are {card.output.scores}"]
    if prov.source_file or prov.created:
        lines.append(f"  made from {prov.source_file or '?'} (sha256 {prov.source_sha256[:16] or '?'}...) on "
                     f"{prov.created or '?'} by edgecls {prov.edgecls_version or '?'}: {prov.format} "
                     f"{prov.quantization}")
    if prov.ladder:
        lines.append(f"  quantization ladder: {prov.holds}; {prov.ladder.get('reason', '')}")
    if prov.calibration:
        cal = prov.calibration
        lines.append("  calibration: " + ", ".join(f"{k} {v}" for k, v in cal.items()
                                               if v is not None and not isinstance(v, (dict, list))))
    if prov.validation:
        val = prov.validation
        lines.append("  validation: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                  for k, v in val.items() if v is not None and not isinstance(v, (dict, list))))
    if card.profile:
        profile = card.profile
        signals = profile.get("signals") or {}
        lines.append(f"  drift reference: {profile.get('images', '?')} {profile.get('source') or 'images'}, "
                     + ", ".join(f"{name} {ref.get('mean', 0):.3g}" for name, ref in signals.items())
                     + " (means); the class mix" + ("" if profile.get("classes") else " (none)"))
    else:
        lines.append("  drift reference: none (edgecls profile MODEL IMAGES makes one)")
    if card.version:
        lines.append(f"  version {card.version}")
    if data["tflite_metadata"] is not None:
        lines.append(f"  standard TFLite metadata (MediaPipe Tasks): {'yes' if data['tflite_metadata'] else 'no'}")
    lines += [f"  note: {note}" for note in clf.notes]
    return lines


def _tflite_metadata(model: Path) -> bool | None:
    """True/False for a .tflite file with/without TFLITE_METADATA; None for other formats or unknown."""
    if model.suffix.lower() != ".tflite":
        return None
    from edgecls.runtime.backends.litert import metadata_names

    names = metadata_names(model)
    return None if names is None else "TFLITE_METADATA" in names
