"""``edgecls predict``."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import (
    backend_option,
    device_option,
    image_paths,
    load_classifier,
    model_options,
    threads_option,
)
from edgecls.commands.text import categories_text, echo, json_line


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--top-k", default=5, show_default=True, type=int, help="Categories per image.")
@click.option("--threshold", default=0.0, show_default=True, type=float, help="Minimum score.")
@backend_option
@threads_option
@device_option
@click.option("--strict", is_flag=True, help="Stop at the first unreadable image (default: report it, go on).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@model_options
def predict(model: Path, images: tuple[str, ...], top_k: int, threshold: float, backend: str,
            threads: int | None, device: str, strict: bool, as_json: bool, model_kwargs: dict) -> None:
    """Classify images (files or folders of images).

    An image that cannot be read is reported (stderr, and a JSON object with "error" in
    --json mode) and the rest are classified; the exit code is then 1. --strict stops at it.

    \b
    Example:
      edgecls predict model_int8.tflite photo.jpg frames/ --top-k 3
    """
    from edgecls.runtime.errors import ImageError

    failed = 0
    paths = image_paths(images)
    with load_classifier(model, backend=backend, num_threads=threads, device=device, **model_kwargs) as clf:
        for path in paths:
            try:
                result = clf.classify(path, max_results=top_k, score_threshold=threshold)
            except ImageError as exc:
                if strict:
                    raise
                failed += 1
                echo(f"error: {exc}", err=True)
                if as_json:
                    click.echo(json_line({"image": str(path), "error": str(exc)}))
                continue
            if as_json:
                click.echo(json_line({"image": str(path), **result.to_dict()}))
            else:
                echo(f"{path}: {categories_text(result.categories)}")
    if failed:
        if len(paths) > 1:
            click.echo(f"{failed} of {len(paths)} images could not be read", err=True)
        raise click.exceptions.Exit(1)
