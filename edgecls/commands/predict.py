"""``edgecls predict``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import click

from edgecls.commands.common import (
    CROP_HELP,
    backend_option,
    device_option,
    image_paths,
    load_classifier,
    model_options,
    takes,
    threads_option,
)
from edgecls.commands.explain import METHOD_HELP, MapWriter
from edgecls.commands.text import categories_text, echo, json_line


@dataclass(frozen=True)
class PredictFlags:
    """``edgecls predict``'s parameters."""

    model: Path
    images: tuple[str, ...]
    top_k: int
    threshold: float
    backend: str
    threads: int | None
    device: str
    strict: bool
    as_json: bool
    explain_dir: Path | None
    explain_method: str
    boxes: Path | None
    crop: str | None
    model_kwargs: dict


@click.command()
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--top-k", default=5, show_default=True, type=int,
              help="Categories per image (a multi-label model answers every label present).")
@click.option("--threshold", default=0.0, show_default=True, type=float, help="Minimum score.")
@backend_option
@threads_option
@device_option
@click.option("--strict", is_flag=True, help="Stop at the first unreadable image (default: report it, go on).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.option("--explain", "explain_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write a heat map of each answer (NAME.png, as `edgecls explain` does) into this folder.")
@click.option("--explain-method", default="occlusion", show_default=True, type=click.Choice(["occlusion", "rise"]),
              help=METHOD_HELP)
@click.option("--boxes", type=click.Path(dir_okay=False, path_type=Path),
              help="Classify these regions of each image instead of the whole image: a JSON list of "
                   "[x_min, y_min, x_max, y_max] pixel boxes (or objects with them), or a DeepStack detection "
                   "answer saved as it came.")
@click.option("--crop", help=CROP_HELP)
@model_options
@takes(PredictFlags)
def predict(f: PredictFlags) -> None:
    """Classify images (files or folders of images).

    An image that cannot be read is reported (stderr, and a JSON object with "error" in
    --json mode) and the rest are classified; the exit code is then 1. --strict stops at it.

    \b
    Examples:
      edgecls predict model_int8.tflite photo.jpg frames/ --top-k 3
      edgecls predict model_int8.tflite photo.jpg --explain why/
      edgecls predict model_int8.tflite frame.jpg --boxes detections.json --crop square:1.2
    """
    if f.boxes is not None:
        return _predict_regions(f)
    if f.crop is not None:
        raise click.UsageError("--crop applies to regions: give --boxes too")
    from edgecls.runtime.errors import ImageError
    from edgecls.runtime.images import to_pixels

    failed = 0
    paths = image_paths(f.images)
    maps = MapWriter(f.explain_dir) if f.explain_dir else None
    with load_classifier(f.model, backend=f.backend, num_threads=f.threads, device=f.device, **f.model_kwargs) as clf:
        for path in paths:
            try:
                result = clf.classify(path, max_results=f.top_k, score_threshold=f.threshold)
                if maps is not None:  # the answer's own label, on the picture at full size
                    pixels = to_pixels(path).array
                    why = clf.explain(pixels, label=result.top.label if result.top else None, method=f.explain_method)
            except ImageError as exc:
                if f.strict:
                    raise
                failed += 1
                echo(f"error: {exc}", err=True)
                if f.as_json:
                    click.echo(json_line({"image": str(path), "error": str(exc)}))
                continue
            files = maps.write(path, pixels, why) if maps is not None else {}
            if f.as_json:
                click.echo(json_line({"image": str(path), **result.to_dict(),
                                      **({"explanation": files["png"]} if files else {})}))
            else:
                echo(f"{path}: {categories_text(result.categories, result.multi_label)}"
                     + (f" (why: {files['png']})" if files else ""))
    if failed:
        if len(paths) > 1:
            click.echo(f"{failed} of {len(paths)} images could not be read", err=True)
        raise click.exceptions.Exit(1)


def _predict_regions(f: PredictFlags) -> None:
    """``--boxes``: each image's regions, one line each (or one JSON object per image, its ``regions`` in order)."""
    from edgecls.runtime.regions import read_boxes

    if f.explain_dir is not None:
        raise click.UsageError("--explain with --boxes: explain a region with `edgecls explain --box`")
    regions = read_boxes(f.boxes)
    with load_classifier(f.model, backend=f.backend, num_threads=f.threads, device=f.device, **f.model_kwargs) as clf:
        for path in image_paths(f.images):
            results = clf.classify_regions(path, regions, crop=f.crop, max_results=f.top_k,
                                           score_threshold=f.threshold)
            if f.as_json:
                click.echo(json_line({"image": str(path), "regions": [r.to_dict() for r in results]}))
                continue
            for r in results:
                box = r.region
                where = f"{path} [{box.x_min:g},{box.y_min:g},{box.x_max:g},{box.y_max:g}]"
                echo(f"{where}: " + (f"skipped: {r.skipped}" if r.skipped else
                                     categories_text(r.categories, r.multi_label)))
