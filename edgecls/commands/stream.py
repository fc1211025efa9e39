"""``edgecls stream``: classify a video file, camera, URL or image folder frame by frame."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from edgecls.commands.common import (
    CROP_HELP,
    backend_option,
    capture_options,
    device_option,
    load_classifier,
    model_options,
    quiet,
    takes,
    threads_option,
)
from edgecls.commands.text import categories_text, echo, json_line

if TYPE_CHECKING:
    from edgecls.runtime.capture import CaptureOptions

EPILOG = """\b
Examples:
  edgecls stream model_int8.tflite clip.mp4 --json
  edgecls stream model_int8.tflite clip.mp4 --out annotated.mp4
  edgecls stream model_int8.tflite 0 --live --smooth 5 --events --show
  edgecls stream model_int8.tflite clip.mp4 --boxes detections.jsonl --crop frigate --json
  edgecls stream model_int8.tflite rtsp://camera.local/stream --live --reconnect \\
      --mqtt localhost:1883/edgecls/front-door
  edgecls stream model_int8.tflite 0 --live --capture hard/ --capture-below 0.6 --capture-max-mb 500
\b
Ctrl-C stops cleanly: the summary is printed, --out is finished, MQTT is flushed (exit 130).
"""


def _open_sinks(stack: contextlib.ExitStack, *, out: Path | None, fps: float, force: bool, show: bool,
                mqtt: str | None, reconnect: bool, title: str) -> list:
    """Open the requested sinks; each is closed (finished, flushed) when ``stack`` unwinds."""
    from edgecls.sinks import SinkRequest, open_sink

    asked = {"mqtt": mqtt, "video": out and str(out), "window": show and f"edgecls: {title}"}
    return [stack.enter_context(contextlib.closing(open_sink(name, SinkRequest(target, fps, force, reconnect))))
            for name, target in asked.items() if target]


@dataclass(frozen=True)
class StreamFlags:
    """``edgecls stream``'s parameters."""

    model: Path
    source: str
    live: bool
    every: int
    max_frames: int | None
    smooth: int | None
    events: bool
    top_k: int
    threads: int | None
    backend: str
    device: str
    as_json: bool
    out: Path | None
    force: bool
    show: bool
    mqtt: str | None
    reconnect: bool
    boxes: Path | None
    crop: str | None
    capture: CaptureOptions | None
    drift: bool
    drift_window: int | None
    drift_every: int
    capture_on_drift: Path | None
    model_kwargs: dict[str, Any]


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(path_type=Path))
@click.argument("source")
@click.option("--live", is_flag=True, help="Always classify the newest frame, dropping (and counting) stale ones.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1), help="Classify every N-th frame.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after N classified frames.")
@click.option("--smooth", type=click.IntRange(min=1), help="Average scores over the last K frames.")
@click.option("--events", is_flag=True, help="Only report frames whose top label changed.")
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(min=1), help="Categories per frame.")
@threads_option
@backend_option
@device_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines per frame, then a summary object.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the frames with the top label drawn on them (.mp4, .avi or .mkv).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option("--show", is_flag=True, help="Show annotated frames in a window (needs a GUI OpenCV); q or Esc stops.")
@click.option("--mqtt", metavar="HOST[:PORT]/TOPIC", help="Publish each result as JSON to an MQTT broker (extra: mqtt).")
@click.option("--reconnect", is_flag=True,
              help="Reopen a camera/URL/pipeline that breaks and buffer MQTT results while the broker is away.")
@click.option("--boxes", type=click.Path(dir_okay=False, path_type=Path),
              help="Classify the boxes a detector found instead of whole frames: a JSON-lines file, one line per "
                   'frame, {"frame": N, "boxes": [[x_min, y_min, x_max, y_max], ...]} or {"timestamp_ms": T, ...} '
                   "(boxes, or a DeepStack answer's predictions), in increasing order.")
@click.option("--crop", help=CROP_HELP)
@capture_options
@click.option("--drift", is_flag=True,
              help="Watch for drift against the model's reference profile: a drift event (a JSON line, and on "
                   "--mqtt) each time a signal's state changes.")
@click.option("--drift-window", type=click.IntRange(min=20), help="Frames per drift comparison (default 500; "
                                                                  "implies --drift).")
@click.option("--drift-every", default=4, show_default=True, type=click.IntRange(min=1),
              help="Read one in this many for drift (consecutive frames are near copies).")
@click.option("--capture-on-drift", type=click.Path(file_okay=False, path_type=Path),
              help="Keep a sample of 16 frames of each window in drift alert in this folder (the capture layout, "
                   "for labelling; implies --drift).")
@model_options
@takes(StreamFlags)
def stream(f: StreamFlags) -> None:
    """Classify SOURCE (camera index, video file, URL, GStreamer pipeline or image folder) with MODEL."""
    from edgecls.runtime.sources import is_live_source

    drifts: list = []
    monitor = None
    if f.drift or f.drift_window or f.capture_on_drift:
        from edgecls.runtime.monitor import MonitorOptions

        monitor = MonitorOptions(window=f.drift_window or 500, every=f.drift_every, on_change=drifts.append)
    with contextlib.ExitStack() as stack:
        clf = stack.enter_context(load_classifier(f.model, num_threads=f.threads, backend=f.backend, device=f.device,
                                                  monitor=monitor, **f.model_kwargs))
        sample = _drift_sample(stack, clf, f.capture_on_drift)
        frames = stack.enter_context(clf.stream(
            f.source, mode="live" if f.live else "video", every=f.every, max_frames=f.max_frames, smooth=f.smooth,
            events=f.events, max_results=f.top_k, keep_frames=bool(f.out or f.show or sample),
            reconnect=f.reconnect and is_live_source(f.source), capture=f.capture,
            regions=f.boxes, crop=f.crop))
        fps = (frames.source_fps or 30.0) / f.every
        sinks = _open_sinks(stack, out=f.out, fps=fps, force=f.force, show=f.show, mqtt=f.mqtt,
                            reconnect=f.reconnect, title=f.source)
        interrupted = False
        try:
            for result in frames:
                _print(result, f.as_json, clf.card.output.multi_label)
                if not all(sink.send(result) for sink in sinks):
                    break
                while drifts:
                    _drift_event(drifts.pop(0), f.as_json, sinks)
                if sample is not None:
                    sample.follow(result, f.source)
        except KeyboardInterrupt:
            interrupted = True
            frames.__exit__(KeyboardInterrupt, None, None)
    _summarize(frames.summary, f)
    if interrupted:
        raise click.exceptions.Exit(130)


def _summarize(summary, f: StreamFlags) -> None:
    from dataclasses import asdict

    if f.as_json:
        click.echo(json_line({"summary": asdict(summary)}))
    elif not quiet():
        click.echo(f"read {summary.frames_read}, classified {summary.classified}, dropped {summary.dropped}, "
                   f"{summary.fps:.1f} FPS, latency p50 {summary.p50_latency_ms or 0:.2f} ms "
                   f"p99 {summary.p99_latency_ms or 0:.2f} ms ({summary.ended})"
                   + (f", {summary.reconnects} reconnects" if summary.reconnects else ""))
        if summary.capture is not None:
            c = summary.capture
            click.echo(f"captured {c.written} of {c.hard} hard frames to {f.capture.dir} (skipped {c.skipped}, "
                       f"dropped {c.dropped}, failed {c.failed}, oldest removed {c.removed})")
    if f.out and not quiet() and not f.as_json:
        echo(f"wrote {f.out}" if f.out.exists() else f"{f.out}: no frames, nothing written")


def _drift_sample(stack: contextlib.ExitStack, clf, folder: Path | None):
    """``--capture-on-drift``: the sample of each alerting window's frames, written where asked (None
    without it)."""
    if folder is None:
        return None
    from edgecls.runtime.capture import CaptureOptions, HardExamples
    from edgecls.runtime.drift_capture import DriftSample

    writer = HardExamples(CaptureOptions(dir=folder, below_score=1.0), labels=clf.labels, model_sha256=clf.sha256)
    stack.callback(writer.close)
    return DriftSample(writer, monitor=clf.monitor)


def _drift_event(report, as_json: bool, sinks: list) -> None:
    """A window whose drift states changed: a JSON line (or a line of text), and a ``drift`` event on MQTT."""
    event = {"event": "drift", **report.to_dict()}
    if as_json:
        click.echo(json_line(event))
    else:
        echo(f"drift: window {report.window}: {report.state} ({', '.join(report.changed)} changed)"
             + "".join(f"; {reason}" for reason in report.reasons))
    for sink in sinks:
        if hasattr(sink, "send_payload"):  # the MQTT sink: the event beside the frames' results
            sink.send_payload(json_line(event))


def _print(result, as_json: bool, multi_label: bool) -> None:
    if as_json:
        click.echo(json_line(result.as_dict()))
    elif result.regions is not None:
        echo(f"frame {result.index:6d}  at {result.timestamp_ms:9.1f} ms  took {result.latency_ms:6.2f} ms  "
             + ("; ".join(f"[{r.region.x_min:g},{r.region.y_min:g},{r.region.x_max:g},{r.region.y_max:g}] "
                          + (f"skipped: {r.skipped}" if r.skipped else categories_text(r.categories, multi_label))
                          for r in result.regions) or "no boxes"))
    else:
        changes = "".join(f"  {word}: {' '.join(labels)}" for word, labels in (("on", result.on), ("off", result.off))
                          if labels)
        echo(f"frame {result.index:6d}  at {result.timestamp_ms:9.1f} ms  took {result.latency_ms:6.2f} ms  "
             f"{categories_text(result.categories, multi_label)}{changes}")
