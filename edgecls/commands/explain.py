"""``edgecls explain``: heat maps of what made the model answer, from the exported file alone."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import image_paths, load_classifier, model_options, threads_option
from edgecls.commands.text import echo, json_line

EPILOG = """\b
Examples:
  edgecls explain model_int8.tflite photo.jpg -o why/
  edgecls explain model_int8.onnx frames/ -o why/ --method rise --label cat --npy --json
"""


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for NAME.png (the map over the image, label and score written on it).")
@click.option("--method", default="occlusion", show_default=True, type=click.Choice(["occlusion", "rise"]),
              help="occlusion: a grey square slid over the image; rise: random masks.")
@click.option("--label", help="Explain this label (default: each image's top-1).")
@click.option("--npy", is_flag=True, help="Also save each raw map as NAME.npy (float32, the image's size).")
@threads_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@model_options
def explain(model: Path, images: tuple[str, ...], out: Path, method: str, label: str | None, npy: bool,
            threads: int | None, as_json: bool, model_kwargs: dict) -> None:
    """Show what in each image made the model answer (or answer --label): a heat map per image.

    Works on every exported file (int8 included): the map comes from classifying perturbed copies of
    the image, not from gradients. An image that cannot be read is reported and skipped (exit 1).
    """
    import os

    import cv2
    import numpy as np

    from edgecls.runtime.errors import ImageError
    from edgecls.runtime.images import to_pixels
    from edgecls.sinks.draw import heat_overlay

    paths = image_paths(images)
    out.mkdir(parents=True, exist_ok=True)
    failed, names = 0, set()
    with load_classifier(model, num_threads=threads, **model_kwargs) as clf:
        for path in paths:
            try:
                pixels = to_pixels(path).array
                result = clf.explain(pixels, label=label, method=method)
            except ImageError as exc:
                failed += 1
                echo(f"error: {exc}", err=True)
                if as_json:
                    click.echo(json_line({"image": str(path), "error": str(exc)}))
                continue
            stem, n = path.stem, 1
            while stem in names:  # two images of the same name in different folders
                n += 1
                stem = f"{path.stem}-{n}"
            names.add(stem)
            png = out / f"{stem}.png"
            tmp = out / f".{stem}.png.tmp.png"
            if not cv2.imwrite(str(tmp), heat_overlay(pixels, result.heatmap, f"{result.label} {result.score:.2f}")):
                raise click.ClickException(f"{png}: cannot write the picture")
            os.replace(tmp, png)
            record = {"image": str(path), "label": result.label, "score": result.score, "method": method,
                      "png": str(png)}
            if npy:
                np.save(out / f"{stem}.npy", result.heatmap)
                record["npy"] = str(out / f"{stem}.npy")
            if as_json:
                click.echo(json_line(record))
            else:
                echo(f"{path}: {result.label} {result.score:.2f} -> {png}")
    if failed:
        raise click.exceptions.Exit(1)
