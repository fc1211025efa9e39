"""``edgecls info``."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import load_classifier
from edgecls.commands.text import echo, json_line


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@click.option("--backend", default="auto", show_default=True, help="auto, litert/tflite or onnxruntime/onnx.")
def info(model: Path, as_json: bool, backend: str) -> None:
    """Show a model's card, tensors and the backend that runs it.

    \b
    Example:
      edgecls info model_int8.tflite --json
    """
    with load_classifier(model, backend=backend) as clf:
        b = clf.backend
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
        }
    if as_json:
        click.echo(json_line(data, indent=2))
        return
    echo(f"{model}  ({data['size_bytes'] / 1e6:.2f} MB)  backend={b.name} device={b.device}")
    echo(f"  input  {b.input.name}: {list(b.input.shape)} {b.input.dtype_name}")
    echo(f"  output {b.output.name}: {list(b.output.shape)} {b.output.dtype_name}")
    card = clf.card
    echo(f"  card: {'embedded' if clf.has_card else 'none (inferred)'}; {len(card.labels)} labels: "
               f"{', '.join(card.labels[:10])}{' ...' if len(card.labels) > 10 else ''}")
    if data["tflite_metadata"] is not None:
        echo(f"  standard TFLite metadata (MediaPipe Tasks): {'yes' if data['tflite_metadata'] else 'no'}")
    for note in clf.notes:
        echo(f"  note: {note}")


def _tflite_metadata(model: Path) -> bool | None:
    """True/False for a .tflite file with/without TFLITE_METADATA; None for other formats or unknown."""
    if model.suffix.lower() != ".tflite":
        return None
    from edgecls.runtime.backends.litert import metadata_names

    names = metadata_names(model)
    return None if names is None else "TFLITE_METADATA" in names
