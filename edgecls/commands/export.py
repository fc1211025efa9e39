"""``edgecls export``: Keras model → validated TFLite/ONNX files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgecls.commands.common import (
    CROP_HELP,
    PASSPHRASE_HELP,
    console,
    csv_list,
    float_list,
    passphrase_from_env,
    quiet,
    size_hw,
    takes,
    use_rich,
    verbose,
)
from edgecls.commands.text import echo
from edgecls.converters.formats import FORMATS
from edgecls.converters.formats.base import quantization_names
from edgecls.converters.heads import HEAD_KINDS
from edgecls.converters.ladder.climb import MAX_RUNGS
from edgecls.converters.normalization import PIXEL_PRESETS
from edgecls.runtime.card import RESIZE_MODES, holds_text

if TYPE_CHECKING:
    from edgecls.converters.export_options import ExportOptions

EPILOG = """\b
Examples:
  edgecls export model.h5
  edgecls export model.h5 --quantize fp32,int8 --calib data/train --val data/val -o exported/
  edgecls export model.keras --formats tflite --pixels symmetric --labels labels.txt
"""


def thresholds_option(ctx: click.Context, param: click.Parameter, value: str | None):
    """``f1``, or a comma list of numbers."""
    if value is None or value == "f1":
        return value
    try:
        return [float(v) for v in value.split(",")]
    except ValueError:
        raise click.BadParameter(f"expected f1 or numbers separated by commas, got {value!r}") from None


@dataclass(frozen=True)
class ExportFlags:
    """``edgecls export``'s parameters (flag names; :meth:`options` maps them onto :class:`ExportOptions`)."""

    model: Path
    out_dir: Path | None
    formats: list[str]
    quantize: list[str]
    calib: Path | None
    calib_size: int
    val: Path | None
    labels: Path | None
    pixels: str
    mean: list[float] | None
    std: list[float] | None
    resize: str
    input_size: tuple[int, int] | None
    opset: int
    per_channel: bool
    min_agreement: float | None
    max_drop: float | None
    max_rung: str
    no_ladder: bool
    no_timing: bool
    report_md: Path | None
    force: bool
    unsafe: bool
    custom_objects: Path | None
    head: str | None
    positive: str | None
    thresholds: str | list[float] | None
    crop: str | None
    frigate: Path | None
    sign: Path | None
    sign_passphrase_env: str | None
    model_version: int | None
    as_json: bool

    def options(self) -> ExportOptions:
        """The export's typed options. Raises ExportError for values the flags' types let through."""
        from edgecls.converters.export_options import ExportOptions
        from edgecls.converters.formats.onnx_format import OnnxOptions

        return ExportOptions(
            formats=self.formats, quantize=self.quantize, calibration=self.calib, calib_size=self.calib_size,
            validation=self.val, labels=self.labels, pixels=self.pixels, mean=self.mean, std=self.std,
            resize=self.resize, input_size=self.input_size,
            format_options={"onnx": OnnxOptions(opset=self.opset, per_channel=self.per_channel)}, force=self.force, unsafe=self.unsafe, custom_objects=self.custom_objects,
            min_agreement=self.min_agreement, max_drop=self.max_drop, max_rung=self.max_rung,
            time_candidates=not self.no_timing, head=self.head, positive=self.positive,
            thresholds=self.thresholds, ladder=not self.no_ladder, crop=self.crop, frigate=self.frigate,
            sign=self.sign, sign_passphrase=passphrase_from_env(self.sign_passphrase_env), model_version=self.model_version)


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: next to the model).")
@click.option("--formats", default=",".join(FORMATS), show_default=True, callback=csv_list,
              help=f"Comma list of {', '.join(FORMATS)}.")
@click.option("--quantize", default="fp32", show_default=True, callback=csv_list,
              help=f"Comma list of {', '.join(quantization_names())}.")
@click.option("--calib", type=click.Path(path_type=Path), help="Calibration image folder (class sub-folders allowed).")
@click.option("--calib-size", default=300, show_default=True, type=click.IntRange(min=1), help="Calibration images used.")
@click.option("--val", type=click.Path(path_type=Path), help="Validation image folder (class sub-folders give accuracy).")
@click.option("--labels", type=click.Path(path_type=Path), help="Labels file, one per line.")
@click.option("--pixels", default="auto", show_default=True,
              type=click.Choice(["auto", *PIXEL_PRESETS]),
              help="Normalization the model was trained with: unit x/255, symmetric x/127.5-1, imagenet, raw. "
                   "auto: raw if the model has its own Rescaling/Normalization layer, else unit; with labelled "
                   "images, the preset under which Keras is clearly most accurate. An explicit preset that another "
                   "clearly beats on labelled images fails the export.")
@click.option("--mean", callback=float_list, help="Per-channel mean on 0-255 pixels, e.g. 123.7,116.3,103.5.")
@click.option("--std", callback=float_list, help="Per-channel std on 0-255 pixels.")
@click.option("--resize", default="stretch", show_default=True, type=click.Choice(RESIZE_MODES),
              help="How the runtime fits frames to the input.")
@click.option("--input-size", callback=size_hw, help="HxW for a model with free spatial dims.")
@click.option("--opset", default=17, show_default=True, type=int, help="ONNX opset.")
@click.option("--per-channel", is_flag=True, help="Per-channel weight scales for ONNX int8 (more accurate, slower on x86).")
@click.option("--min-agreement", type=click.FloatRange(0, 1),
              help="Minimum top-1 agreement with Keras (default 0.999 fp32, 0.98 others, unless --max-drop is given).")
@click.option("--max-drop", type=click.FloatRange(0, 100),
              help="Accuracy budget: at most this many points below Keras on labelled --val images "
                   "(with --min-agreement, both must hold). With int8, either budget climbs the quantization "
                   "ladder to the fastest file within it: int8 calibration variants, int8 with the worst layers "
                   "in float, int16 activations (if faster than fp32 here), fp16, fp32.")
@click.option("--max-rung", default="fp32", show_default=True, type=click.Choice(MAX_RUNGS),
              help="How far the ladder may climb; a budget still missed there exits 1.")
@click.option("--no-ladder", is_flag=True,
              help="Without --max-drop/--min-agreement, an int8 file that misses the default check (agreement "
                   "0.98) climbs the quantization ladder to it; --no-ladder fails it instead (kept, marked failed).")
@click.option("--no-timing", is_flag=True,
              help="Let the ladder decide on accuracy alone, without timing candidates against fp32 here "
                   "(for an export made on another machine than the one that runs the model).")
@click.option("--report", "report_md", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write a page a person reads (Markdown): every file, the ladder's choices, the worst "
                   "layers, the calibration images' profile and warnings.")
@click.option("--force", is_flag=True, help="Overwrite existing outputs.")
@click.option("--unsafe", is_flag=True, help="Allow Lambda layers (runs code from the model file).")
@click.option("--custom-objects", type=click.Path(dir_okay=False, path_type=Path),
              help="Python file defining custom layers.")
@click.option("--head", type=click.Choice(HEAD_KINDS),
              help="The model's head, when the evidence (its last layer, its loss, its outputs) disagrees or cannot "
                   "decide. Every file outputs probabilities whatever the head.")
@click.option("--positive", help="Binary head: the label the model's one output is the probability of "
                                 "(default: the second of the two labels, as Keras orders class folders).")
@click.option("--thresholds", callback=thresholds_option,
              help="Multi-label head: f1 (each label's threshold chosen on --val to maximize its F1), or one "
                   "number per label; default 0.5 each.")
@click.option("--crop", help=CROP_HELP.replace("Default: the model card's, else", "Written into the card; default:"))
@click.option("--frigate", type=click.Path(file_okay=False, path_type=Path),
              help="Also write a Frigate model folder here: model.tflite (the TFLite int8 file: uint8 pixels in, "
                   "non-negative scores out) and labelmap.txt; refused, with the reason, for a model that cannot "
                   "meet that (Frigate feeds 224x224 crops).")
@click.option("--sign", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Sign every file written with this private key (edgecls keygen): FILE.sig beside each, in the "
                   "OpenSSF model-signing format.")
@click.option("--sign-passphrase-env", metavar="VAR", help=PASSPHRASE_HELP)
@click.option("--model-version", type=click.IntRange(min=0),
              help="The model's version in every file's card (a signed update may not go below an accepted one); "
                   "default: the export time in seconds since 1970.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@takes(ExportFlags)
def export(f: ExportFlags) -> None:
    """Export a Keras image classifier to TFLite and ONNX, and validate every file."""
    from edgecls.commands.quiet import captured_output
    from edgecls.converters import export as run_export
    from edgecls.converters.errors import ValidationFailedError

    options = f.options()
    if f.report_md is not None and f.report_md.exists() and not f.force:
        from edgecls.converters.errors import OutputExistsError

        raise OutputExistsError(f"{f.report_md}: already exists; pass --force to overwrite")
    interactive = use_rich() and not f.as_json  # decided before stderr is captured
    with captured_output(verbose()) as stream:
        if interactive:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
            )

            columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TimeElapsedColumn())
            with Progress(*columns, console=console(stream=stream), transient=True,
                          redirect_stdout=False, redirect_stderr=False) as progress:
                task = progress.add_task("exporting", total=None)

                def on_step(message: str, done: int, total: int) -> None:
                    progress.update(task, description=message, completed=done, total=total or None)

                report = run_export(f.model, f.out_dir, options, on_step=on_step)
        elif verbose():  # off a terminal, -v prints one line per step: what a log (or a test) can follow

            def on_step(message: str, done: int, total: int) -> None:
                click.echo(f"step: {message} ({done}/{total} files written)", err=True)

            report = run_export(f.model, f.out_dir, options, on_step=on_step)
        else:
            report = run_export(f.model, f.out_dir, options)
    if f.report_md is not None:
        from edgecls.converters.atomic import atomic_write_bytes
        from edgecls.converters.report_page import render_markdown

        atomic_write_bytes(f.report_md, render_markdown(report).encode(), overwrite=True)
    if f.as_json:
        click.echo(report.to_json())
    else:
        print_report(report)
    if not report.ok:
        names = ", ".join(file.path.name for file in report.failed)
        why = " or ".join(dict.fromkeys(
            "top-1 agreement with Keras below the minimum" if file.min_agreement is not None
            and file.validation.top1_agreement < file.min_agreement else "accuracy drop over --max-drop"
            for file in report.failed))
        ladders = "; ".join(f"{file.path.name}: {file.ladder.reason}" for file in report.failed if file.ladder)
        raise ValidationFailedError(f"{names}: {why}{f' ({ladders})' if ladders else ''} (files kept, marked "
                                    f"failed in {report.path})")


def _summary_lines(report) -> list[str]:
    """What the table does not say: where the report (and a Frigate folder) went, the head, the thresholds."""
    lines = [f"validated on {report.validation_source}; {report.seconds:.1f} s; peak memory "
             f"{report.peak_rss_mb:.0f} MB; report: {report.path}"]
    if report.frigate is not None:
        lines.append(f"frigate: {report.frigate} (model.tflite, labelmap.txt: copy the folder into Frigate's model "
                     "cache, crop policy frigate)")
    if report.signatures:
        lines.append(f"signed: {', '.join(p.name for p in report.signatures)} (version "
                     f"{report.options.model_version}; check with edgecls verify FILE --key PUB.pem)")
    head = report.head
    if head is not None:
        baked = f", {head.baked} baked after it" if head.baked else ""
        lines.append(f"head: {head.kind} ({head.chosen_by}{baked}); every file outputs probabilities")
    if report.thresholds:
        lines.append("thresholds: " + ", ".join(f"{label} {t:.3f}" for label, t in
                                                zip(report.labels, report.thresholds, strict=True)))
    return lines


def print_report(report) -> None:
    """The export table: one row per file."""
    from rich.table import Table

    table = Table(title=f"edgecls export: {report.source}", title_justify="left")
    multi = report.multi_label  # judged by label sets and macro F1
    for column in ("file", "asked", "holds", "size MB", "label-set agree" if multi else "top-1 agree", "max |Δ|",
                   "macro F1" if multi else "accuracy", "Keras F1" if multi else "Keras acc", "drop vs Keras", "ok"):
        table.add_column(column, justify="left" if column in ("file", "asked", "holds") else "right")
    for f in report.files:
        v = f.validation
        accuracy = "-" if v.accuracy is None else f"{v.accuracy:.4f}"
        keras = "-" if v.keras_accuracy is None else f"{v.keras_accuracy:.4f}"
        drop = "-" if v.accuracy_drop is None else f"{v.accuracy_drop * 100:+.2f} pt"
        table.add_row(f.path.name, f.quantization, holds_text(f.rung, f.float_nodes),
                      f"{f.size_bytes / 1e6:.2f}", f"{v.top1_agreement:.4f}", f"{v.max_abs_diff:.4f}",
                      accuracy, keras, drop, "yes" if f.passed else "FAILED")
    out = console()
    out.print(table)
    for line in _summary_lines(report):
        out.print(line)
    if not quiet():
        if any(f.validation.accuracy_drop is not None for f in report.files):
            what = "macro F1" if multi else "accuracy"
            out.print(f"drop vs Keras: Keras' {what} minus the file's, in points (negative: the file scored higher)")
        for f in report.files:
            if f.ladder:
                out.print(f"ladder: {f.path.name}: {f.ladder.reason}")
        for warning in report.quantization.warnings if report.quantization else []:
            out.print(f"warning: {warning.message} ({warning.cause})")
        for note in report.notes:
            if note.startswith("warning: "):  # what the export assumed (labels, ...): said on stderr
                echo(note, err=True)
            else:
                out.print(f"note: {note}")
