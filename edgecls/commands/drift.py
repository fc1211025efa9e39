"""``edgecls profile`` and ``edgecls drift``: a model's reference profile, and a folder of images against it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecls.commands.common import image_paths, load_classifier, threads_option
from edgecls.commands.text import echo, json_line


def _profile(clf, paths: list[Path], source: str):
    from edgecls.converters.profiling import profile_of_images

    return profile_of_images(clf, [str(p) for p in paths], source)


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the profile to this JSON file instead of into the model's card.")
@click.option("--json", "as_json", is_flag=True, help="Print the profile as JSON.")
@threads_option
def profile(model: Path, images: tuple[str, ...], out: Path | None, as_json: bool, threads: int | None) -> None:
    """Make MODEL's reference profile for the drift monitor from IMAGES (files or folders): into its card,
    or --out FILE.json.

    Use images like the ones the camera should see (the validation set, a week of good frames); at least
    20, a few hundred for steady alarms. A signed file is left alone: write --out, or sign it again after.

    \b
    Example:
      edgecls profile model_int8.tflite data/val && edgecls info model_int8.tflite
    """
    from dataclasses import replace

    from edgecls.runtime.signatures import signature_path

    if out is None and signature_path(model).exists():
        raise click.UsageError(f"{model} is signed: writing the profile into it would break its signature; "
                               "give --out FILE.json, or sign it again afterwards")
    paths = image_paths(images)
    with load_classifier(model, num_threads=threads) as clf:
        made = _profile(clf, paths, ", ".join(images))
        card = replace(clf.card, profile=made.to_dict())
    if out is not None:
        out.write_text(json.dumps(made.to_dict(), indent=1))
    else:
        from edgecls.converters.metadata import embed_card_file

        embed_card_file(model, card)
    if as_json:
        click.echo(json_line(made.to_dict()))
        return
    echo(f"profile of {made.images} images written to {out or model}:")
    for name, ref in made.signals.items():
        echo(f"  {name:10s} mean {ref.mean:8.3f}  range {ref.low:.3f}–{ref.high:.3f}")


@click.command()
@click.argument("model", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("images", nargs=-1, required=True)
@click.option("--profile", "profile_file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="The reference (from edgecls profile --out) when not the model card's.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path),
              help="Draw each signal's histogram, the images against the reference, into this PNG (extra: plot).")
@threads_option
def drift(model: Path, images: tuple[str, ...], profile_file: Path | None, as_json: bool, plot: Path | None,
          threads: int | None) -> None:
    """Compare IMAGES (files or folders, e.g. a week of captures) with MODEL's reference profile: PSI and a
    state per signal, and why.

    \b
    Example:
      edgecls drift model_int8.tflite captures/ --plot drift.png
    """
    from edgecls.runtime.monitor import MonitorOptions

    paths = image_paths(images)
    reference = json.loads(profile_file.read_text()) if profile_file is not None else None
    options = MonitorOptions(window=max(20, len(paths)), every=1, profile=reference)
    with load_classifier(model, num_threads=threads, monitor=options) as clf:
        report = None
        for start in range(0, len(paths), 64):
            batch = [str(p) for p in paths[start:start + 64]]
            clf.scores_batch(batch)
        report = clf.monitor.last
    if report is None:
        raise click.UsageError(f"{len(paths)} images: a drift report needs at least 20")
    if plot is not None:
        _plot(report, clf.monitor.profile, plot)
    if as_json:
        click.echo(json_line(report.to_dict()))
        return
    echo(f"{report.images} images against the reference of {clf.monitor.profile.images}: {report.state}")
    for s in report.signals:
        echo(f"  {s.signal:10s} PSI {s.psi:7.3f}  {s.state:5s}  mean {s.mean:.3f} (reference {s.reference_mean:.3f})"
             + (f"  {s.reason}" if s.reason else ""))


def _plot(report, reference, path: Path) -> None:
    """Each signal's shares per bin, the images' beside the reference's. Raises BackendUnavailableError."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        from edgecls.runtime.errors import BackendUnavailableError

        raise BackendUnavailableError("--plot draws with matplotlib: pip install 'edgecls[plot]'",
                                      extra="plot") from None
    figure, axes = plt.subplots(1, len(report.signals), figsize=(3 * len(report.signals), 2.8), squeeze=False)
    for ax, s in zip(axes[0], report.signals, strict=True):
        ref = reference.classes if s.signal == "classes" else reference.signals[s.signal].shares
        x = range(len(ref))
        ax.bar([i - 0.2 for i in x], ref, width=0.4, label="reference")
        ax.bar([i + 0.2 for i in x], s.shares, width=0.4, label="images")
        ax.set_title(f"{s.signal}: PSI {s.psi:.2f} ({s.state})", fontsize=9)
        ax.set_xticks([])
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
