"""``edgecls batch``: classify an archive into Parquet, on this machine's cores or a Ray cluster."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

from edgecls.commands.common import (
    CROP_HELP,
    backend_option,
    capture_options,
    device_option,
    quiet,
    takes,
    trust_options,
)
from edgecls.commands.text import echo, json_line

if TYPE_CHECKING:
    from edgecls.runtime.capture import CaptureOptions
    from edgecls.runtime.trust import Trust

EPILOG = """\b
Examples:
  edgecls batch model_int8.tflite photos/ -o results/
  edgecls batch model_int8.tflite 'archive/**/*.jpg' clips/*.mp4 --every-seconds 2 -o results/ --json
  edgecls batch model_int8.tflite list.csv -o results/ --engine ray --ray-address 127.0.0.1:6379
  edgecls batch model_int8.tflite photos/ -o results/ --resume     # after an interruption
  edgecls batch model_int8.tflite photos/ -o results/ --capture hard/ --capture-below 0.6
  edgecls batch model_int8.tflite detections.csv -o results/ --crop square:1.2   # columns path, boxes
  edgecls batch model_int8.tflite 'captures/2026-12-*/' -o week/ --drift   # the week against the reference
\b
INPUT: image files, folders (recursive), globs, .txt/.csv/.parquet lists of paths, video files.
A .csv/.parquet list with a "boxes" column (JSON: a list of boxes, one box, or a DeepStack answer)
classifies those regions of each image, one row per box.
OUT: a folder of Parquet files, one row per image or sampled frame (an unreadable one has "error").
"""


@dataclass(frozen=True)
class BatchFlags:
    """``edgecls batch``'s parameters."""

    model: Path
    inputs: tuple[str, ...]
    out: Path
    engine: str
    ray_address: str | None
    workers: int | None
    batch_size: int
    top_k: int
    every_seconds: float
    resume: bool
    as_json: bool
    capture: CaptureOptions | None
    crop: str | None
    trust: Trust | None
    drift: bool
    backend: str
    device: str


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--out", required=True, type=click.Path(path_type=Path), help="Output folder (Parquet files).")
@click.option("--engine", default="local", show_default=True, type=click.Choice(["local", "ray"]),
              help="local: a process pool here; ray: Ray Data (extra: ray).")
@click.option("--ray-address", metavar="ADDR", help="Join this Ray cluster (default: start a local Ray instance).")
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes or actors (default: all cores / cluster CPUs).")
@click.option("--batch-size", default=32, show_default=True, type=click.IntRange(min=1), help="Images per inference call.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(min=1), help="Labels and scores per row.")
@click.option("--every-seconds", default=1.0, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="One frame per this many seconds of a video.")
@click.option("--resume", is_flag=True, help="Continue the run that made OUT: classify only what it lacks.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@capture_options
@click.option("--crop", help=CROP_HELP + " For images listed with boxes.")
@trust_options
@click.option("--drift", is_flag=True, help="Compare every image with the model's reference profile: PSI and a state "
                                            "per signal, and why (OUT/_drift.json; see edgecls drift).")
@backend_option
@device_option
@takes(BatchFlags)
def batch(f: BatchFlags) -> None:
    """Classify images and video frames in bulk into a folder of Parquet files.

    Runs on every core of this machine by default (--engine local), or on Ray (--engine ray: a local
    Ray instance, or the cluster at --ray-address). Killed and rerun with --resume, it classifies only
    what OUT lacks; OUT holds each input once. Exit 1 when some inputs could not be read (their rows
    say why).
    """
    import sys

    from edgecls.batch import BatchOptions, run

    if f.ray_address and f.engine != "ray":
        raise click.UsageError("--ray-address needs --engine ray")
    options = BatchOptions(engine=f.engine, workers=f.workers, batch_size=f.batch_size, top_k=f.top_k,
                           every_seconds=f.every_seconds, resume=f.resume, ray_address=f.ray_address, capture=f.capture,
                           crop=f.crop, trust=f.trust, drift=f.drift,
                           backend=f.backend, device=f.device)
    summary = run(f.model, f.inputs, f.out, options, progress_to=None if quiet() else sys.stderr)
    data = summary.to_dict()
    if f.as_json:
        click.echo(json_line(data))
    else:
        echo(f"{summary.classified:,} classified ({summary.errors:,} unreadable), {summary.skipped:,} already in "
             f"{f.out}; {summary.rows:,} rows in all")
        if summary.classified:
            echo(f"{summary.images_per_s:,.0f} images/s with {summary.workers} {f.engine} worker(s), "
                 f"{summary.wall_s:.1f} s in all ({summary.start_s:.1f} s to start the engine)"
                 + (f"; {summary.retried} unit(s) of work retried after a worker died" if summary.retried else ""))
        if summary.capture is not None:
            c = summary.capture
            echo(f"captured {c['written']:,} hard items to {f.capture.dir} ({c['hard']:,} hard, "
                 f"{c['skipped']:,} skipped by its rules, oldest removed {c['removed']:,})")
        if summary.drift is not None:
            _echo_drift(summary.drift, f.out)
    if summary.errors:
        raise click.exceptions.Exit(1)


def _echo_drift(drift: dict, out: Path) -> None:
    """The drift report's state and reasons, the signal that moved most first."""
    if not drift["images"]:
        echo(f"drift: no image compared with the reference (see {out / '_drift.json'})")
        return
    signals = sorted(drift["signals"].values(), key=lambda s: -s["psi"])
    echo(f"drift: {drift['state']} over {drift['images']:,} images against the reference of "
         f"{drift['reference_images']:,}" + (f" ({drift['shards_without']} shard(s) from a run without --drift "
                                           "not compared)" if drift["shards_without"] else ""))
    for s in signals:
        if s["reason"]:
            echo(f"  {s['reason']}")
