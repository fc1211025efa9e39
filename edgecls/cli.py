"""The ``edgecls`` command line: a thin layer mapping errors to exit codes.

Exit codes: 0 success, 1 an :class:`EdgeclsError` (one ``error: ...`` line on
stderr; traceback only with ``-v``), 2 bad usage. Heavy modules (the runtime's
engines, the converters, TensorFlow) are imported only by the commands that need them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import click

from edgecls import __version__

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}


def _image_paths(inputs: Sequence[str]) -> list[Path]:
    paths: list[Path] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            paths.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        else:
            paths.append(path)
    return paths


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edgecls")
@click.option("-v", "--verbose", is_flag=True, help="Show tracebacks and engine notes.")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Export Keras image classifiers to TFLite/ONNX and run them at the edge."""
    ctx.obj = {"verbose": verbose}


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@click.option("--backend", default="auto", show_default=True, help="auto, litert/tflite or onnxruntime/onnx.")
def info(model: Path, as_json: bool, backend: str) -> None:
    """Show a model's card, tensors and the backend that runs it.

    \b
    Example:
      edgecls info model_int8.tflite --json
    """
    from edgecls.runtime import Classifier

    with Classifier.from_path(model, backend=backend) as clf:
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
            "card": clf.card.to_dict(),
            "notes": list(clf.notes),
        }
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{model}  ({data['size_bytes'] / 1e6:.2f} MB)  backend={b.name} device={b.device}")
    click.echo(f"  input  {b.input.name}: {list(b.input.shape)} {b.input.dtype_name}")
    click.echo(f"  output {b.output.name}: {list(b.output.shape)} {b.output.dtype_name}")
    card = clf.card
    click.echo(f"  card: {'embedded' if clf.has_card else 'none (inferred)'}; {len(card.labels)} labels: "
               f"{', '.join(card.labels[:10])}{' ...' if len(card.labels) > 10 else ''}")
    for note in clf.notes:
        click.echo(f"  note: {note}")


@cli.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--top-k", default=5, show_default=True, type=int, help="Categories per image.")
@click.option("--threshold", default=0.0, show_default=True, type=float, help="Minimum score.")
@click.option("--backend", default="auto", show_default=True, help="auto, litert/tflite or onnxruntime/onnx.")
@click.option("--threads", default=None, type=int, help="Engine threads (default: all cores).")
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "gpu", "auto"]))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
def predict(model: Path, images: tuple[str, ...], top_k: int, threshold: float, backend: str,
            threads: int | None, device: str, as_json: bool) -> None:
    """Classify images (files or folders of images).

    \b
    Example:
      edgecls predict model_int8.tflite photo.jpg frames/ --top-k 3
    """
    from edgecls.runtime import Classifier

    with Classifier.from_path(model, backend=backend, num_threads=threads, device=device) as clf:
        for path in _image_paths(images):
            result = clf.classify(path, max_results=top_k, score_threshold=threshold)
            if as_json:
                click.echo(json.dumps({"image": str(path), **result.to_dict()}))
            else:
                cats = "  ".join(f"{c.label}={c.score:.3f}" for c in result.categories)
                click.echo(f"{path}: {cats}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 EdgeclsError, 2 usage)."""
    from edgecls.runtime.errors import EdgeclsError

    args = list(sys.argv[1:] if argv is None else argv)
    verbose = "-v" in args or "--verbose" in args
    try:
        cli.main(args=args, prog_name="edgecls", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
    except EdgeclsError as exc:
        if verbose:
            raise
        click.echo(f"error: {exc}", err=True)
        return 1
    return 0
