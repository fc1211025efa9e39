"""``edgecls explain``: heat maps of what made the model answer, from the exported file alone."""

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
from edgecls.commands.text import echo, json_line

EPILOG = """\b
Examples:
  edgecls explain model_int8.tflite photo.jpg -o why/
  edgecls explain model_int8.onnx frames/ -o why/ --method rise --label cat --npy --json
"""


class MapWriter:
    """Writes explanations into one folder: ``NAME.png`` (the map over the image, label and score on it,
    small images enlarged) and, on request, ``NAME.npy`` (the map at the image's size); two images of the
    same name get ``NAME-2`` and so on."""

    def __init__(self, out: Path, *, npy: bool = False) -> None:
        out.mkdir(parents=True, exist_ok=True)
        self.out, self.npy = out, npy
        self._names: set[str] = set()

    def write(self, path: Path, pixels, result, tag: str | None = None) -> dict:
        """Write ``result`` (an Explanation of ``pixels``, read from ``path``) as ``NAME.png``, or
        ``NAME-TAG.png`` (a multi-label model's map per label); returns the files written.

        Raises:
            click.ClickException: the picture cannot be written.
        """
        import cv2
        import numpy as np

        from edgecls.runtime.capture_store import folder_name
        from edgecls.runtime.files import write_whole
        from edgecls.sinks.draw import explanation_picture

        base = path.stem if tag is None else f"{path.stem}-{folder_name(tag)}"
        stem, n = base, 1
        while stem in self._names:
            n += 1
            stem = f"{base}-{n}"
        self._names.add(stem)
        png = self.out / f"{stem}.png"
        ok, encoded = cv2.imencode(".png", explanation_picture(pixels, result))
        if not ok:
            raise click.ClickException(f"{png}: cannot encode the picture")
        write_whole(png, encoded.tobytes())
        files = {"png": str(png)}
        if self.npy:
            np.save(self.out / f"{stem}.npy", result.heatmap)
            files["npy"] = str(self.out / f"{stem}.npy")
        return files


METHOD_HELP = "occlusion: a square of the image blurred, slid over it; rise: random masks."
BASELINE_HELP = "What a removed part becomes: the image blurred, or mid-grey."


@dataclass(frozen=True)
class ExplainFlags:
    """``edgecls explain``'s parameters."""

    model: Path
    images: tuple[str, ...]
    out: Path
    method: str
    baseline: str
    label: str | None
    npy: bool
    threads: int | None
    backend: str
    device: str
    as_json: bool
    box: tuple[float, float, float, float] | None
    crop: str | None
    model_kwargs: dict


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for NAME.png (the map over the image, label and score written on it).")
@click.option("--method", default="occlusion", show_default=True, type=click.Choice(["occlusion", "rise"]),
              help=METHOD_HELP)
@click.option("--baseline", default="blur", show_default=True, type=click.Choice(["blur", "grey"]), help=BASELINE_HELP)
@click.option("--label", help="Explain this label (default: each image's top-1; a multi-label model: each label "
                               "present, one map each, NAME-LABEL.png).")
@click.option("--npy", is_flag=True, help="Also save each raw map as NAME.npy (float32, the image's size).")
@threads_option
@backend_option
@device_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image.")
@click.option("--box", type=(float, float, float, float), metavar="X_MIN Y_MIN X_MAX Y_MAX",
              help="Explain the answer for this region of each image (the crop the model sees, cut by --crop).")
@click.option("--crop", help=CROP_HELP)
@model_options
@takes(ExplainFlags)
def explain(f: ExplainFlags) -> None:
    """Show what in each image made the model answer (or answer --label): a heat map per image.

    Works on every exported file (int8 included): the map comes from classifying perturbed copies of
    the image, not from gradients. An image that cannot be read is reported and skipped (exit 1).
    """
    from edgecls.runtime.errors import ImageError
    from edgecls.runtime.images import to_pixels

    paths = image_paths(f.images)
    writer = MapWriter(f.out, npy=f.npy)
    failed = 0
    with load_classifier(f.model, num_threads=f.threads, backend=f.backend, device=f.device, **f.model_kwargs) as clf:
        multi = clf.card.output.multi_label
        for path in paths:
            try:
                pixels, fitted = _region(clf, to_pixels(path).array, f) if f.box else (to_pixels(path).array, {})
                wanted = [f.label] if f.label is not None or not multi else (_present(clf, pixels, fitted) or [None])
                results = [clf.explain(pixels, label=one, method=f.method, baseline=f.baseline, **fitted)
                           for one in wanted]
            except ImageError as exc:
                failed += 1
                echo(f"error: {exc}", err=True)
                if f.as_json:
                    click.echo(json_line({"image": str(path), "error": str(exc)}))
                continue
            for result in results:  # a multi-label model: one map per label present
                _report(path, writer.write(path, pixels, result, result.label if multi else None), result, f.method,
                        f.as_json)
    if failed:
        raise click.exceptions.Exit(1)


def _present(clf, pixels, fitted: dict) -> list[str]:
    """The labels a multi-label model finds present in ``pixels``, fitted to its input as ``fitted`` says."""
    from edgecls.runtime.options import ClassifyOptions

    scores = clf.scores_of_inputs(clf.preprocess(pixels, **fitted)[None])[0]
    return [c.label for c in clf.categorize(scores, ClassifyOptions(max_results=len(clf.labels)))]


def _region(clf, frame, f: ExplainFlags):
    """The crop of ``--box`` the model sees (by ``--crop``, else the card's policy): what is explained, and
    how it is fitted to the input (the crop's fit, the policy's sample), as classify_regions does.
    Raises RegionError: a bad box or policy; the box outside the image or under the policy's minimum."""
    from edgecls.runtime.errors import RegionError
    from edgecls.runtime.regions import CropPolicy, Region, cut

    policy = CropPolicy.parse(f.crop if f.crop is not None else clf.card.input.crop)
    crop = policy.plan(Region(*f.box), frame.shape[1], frame.shape[0])
    if isinstance(crop, str):
        raise RegionError(f"--box {' '.join(f'{v:g}' for v in f.box)}: {crop}", options=("box",))
    return cut(frame, crop, policy), {"resize": crop.fit, "sample": policy.sample}


def _report(path: Path, files: dict, result, method: str, as_json: bool) -> None:
    if not result.heatmap.any():
        echo(f"note: {path}: the map is flat: nothing {method} did moved the score of {result.label} "
             f"({result.score:.3f}); a score at its ceiling cannot move (an int8 file's 255/255: try the "
             "fp32 file)", err=True)
    if as_json:
        click.echo(json_line({"image": str(path), "label": result.label, "score": result.score,
                              "method": method, **files}))
    else:
        echo(f"{path}: {result.label} {result.score:.2f} -> {files['png']}")
