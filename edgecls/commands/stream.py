"""``edgecls stream``: classify a video file, camera, URL or image folder frame by frame."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgecls.commands.common import load_classifier, quiet

EPILOG = """\b
Examples:
  edgecls stream model_int8.tflite clip.mp4 --json
  edgecls stream model_int8.tflite 0 --live --smooth 5 --events
  edgecls stream model_int8.tflite rtsp://camera.local/stream --live --max-frames 300
"""


@click.command(epilog=EPILOG)
@click.argument("model", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("source")
@click.option("--live", is_flag=True, help="Always classify the newest frame, dropping (and counting) stale ones.")
@click.option("--every", default=1, show_default=True, type=click.IntRange(min=1), help="Classify every N-th frame.")
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after N classified frames.")
@click.option("--smooth", type=click.IntRange(min=1), help="Average scores over the last K frames.")
@click.option("--events", is_flag=True, help="Only print frames whose top label changed.")
@click.option("--top-k", default=1, show_default=True, type=click.IntRange(min=1), help="Categories per frame.")
@click.option("--threads", type=click.IntRange(min=1), help="Engine threads (default: all cores).")
@click.option("--json", "as_json", is_flag=True, help="JSON lines per frame, then a summary object.")
def stream(model, source, live, every, max_frames, smooth, events, top_k, threads, as_json) -> None:
    """Classify SOURCE (camera index, video file, URL, GStreamer pipeline or image folder) with MODEL."""
    from dataclasses import asdict

    src = int(source) if source.isdigit() else source
    with load_classifier(model, num_threads=threads) as clf:
        with clf.stream(src, mode="live" if live else "video", every=every, max_frames=max_frames,
                        smooth=smooth, events=events, max_results=top_k) as frames:
            for result in frames:
                if as_json:
                    click.echo(json.dumps({"frame": result.index, "timestamp_ms": round(result.timestamp_ms, 3),
                                           "latency_ms": round(result.latency_ms, 3),
                                           "categories": [asdict(c) for c in result.categories]}))
                else:
                    cats = "  ".join(f"{c.label}={c.score:.3f}" for c in result.categories)
                    click.echo(f"frame {result.index:6d}  {result.timestamp_ms:9.1f} ms  {cats}")
        summary = frames.summary
    if as_json:
        click.echo(json.dumps({"summary": asdict(summary)}))
    elif not quiet():
        click.echo(f"read {summary.frames_read}, classified {summary.classified}, dropped {summary.dropped}, "
                   f"{summary.fps:.1f} FPS, latency p50 {summary.p50_latency_ms or 0:.2f} ms "
                   f"p99 {summary.p99_latency_ms or 0:.2f} ms ({summary.ended})")
