"""``edgecls bench``: per-stage latency, throughput, cold start and memory, side by side."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from edgecls.commands.common import (
    backend_option,
    console,
    device_option,
    make_table,
    quiet,
    size_wh,
    takes,
    thread_list,
    verbose,
)
from edgecls.runtime.card import holds_text

EPILOG = """\b
Examples:
  edgecls bench model_int8.tflite
  edgecls bench model_fp32.tflite model_int8.tflite model_int8.onnx --runs 200 --json
  edgecls bench model_int8.tflite --image photo.jpg --threads 1,2,4 --csv bench.csv
  edgecls bench --pick exported/ --data val/      # every file x engine x threads: writes exported/deploy.json
"""


def _duration(ctx, param, value: str | None) -> float | None:
    """``90``, ``90s``, ``10m`` or ``1h`` → seconds."""
    if value is None:
        return None
    units = {"s": 1, "m": 60, "h": 3600}
    text = value.strip().lower()
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        seconds = -1.0
    if seconds <= 0:
        raise click.BadParameter(f"expected a duration like 90s, 10m or 1h, got {value!r}")
    return seconds


@dataclass(frozen=True)
class BenchFlags:
    """``edgecls bench``'s parameters."""

    models: tuple[Path, ...]
    image: Path | None
    size: tuple[int, int]
    runs: int
    duration: float | None
    warmup: int
    threads: list[int] | None
    batch: int
    data: Path | None
    backend: str
    device: str
    rounds: int
    sustained: float | None
    window: float
    profile: bool
    no_cold_start: bool
    as_json: bool
    csv_path: Path | None
    plot_path: Path | None
    pick: Path | None
    min_agreement: float | None
    max_drop: float | None


@click.command(epilog=EPILOG)
@click.argument("models", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--image", type=click.Path(path_type=Path), help="A real image to classify (default: generated camera frames).")
@click.option("--size", default="640x480", show_default=True, callback=size_wh, help="Generated frame size WxH.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(min=1), help="Timed classifications.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), help="Measure for S seconds instead of --runs.")
@click.option("--warmup", default=10, show_default=True, type=click.IntRange(min=0), help="Untimed first classifications.")
@click.option("--threads", callback=thread_list, help="Engine threads, at least 1; a comma list (1,2,4) compares several; leave it out to use every core.")
@click.option("--batch", default=1, show_default=True, type=click.IntRange(min=1),
              help="Also measure classify_batch throughput with B frames per call.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), help="Labelled image folder: adds accuracy.")
@backend_option
@device_option
@click.option("--rounds", type=click.IntRange(min=1),
              help="Repeat the runs R times, models interleaved; reports the spread of the per-round p50s "
                   "(default 1; 5 with --pick).")
@click.option("--sustained", callback=_duration, help="Classify without pause for this long (e.g. 10m) and "
              "report p50/p99 per --window: does the machine throttle?")
@click.option("--window", default="60s", show_default=True, callback=_duration, help="Window of --sustained.")
@click.option("--profile", is_flag=True, help="Also list the 10 slowest operators (ONNX Runtime's profiler; "
              "LiteRT's Python API has no op profiler).")
@click.option("--no-cold-start", is_flag=True, help="Skip the fresh-process cold-start probe.")
@click.option("--json", "as_json", is_flag=True, help="Print all figures as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path), help="Write the table as CSV.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a PNG bar chart (needs matplotlib: pip install 'edgecls[plot]').")
@click.option("--pick", type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="Measure every file of this export folder on every installed engine and thread count (1, half, "
                   "all cores), discard those outside their accuracy budget on --data, and write the fastest to "
                   "DIR/deploy.json (used when a command is given the folder).")
@click.option("--min-agreement", type=click.FloatRange(0, 1), help="With --pick: every file's top-1 agreement "
              "floor with the fp32 file (default: each file's own budget, from its card).")
@click.option("--max-drop", type=click.FloatRange(0, 100), help="With --pick: every file's largest accuracy drop, "
              "in points (class folders in --data).")
@takes(BenchFlags)
def bench(f: BenchFlags) -> None:
    """Benchmark exported models: what a camera app pays per frame, with the runtime only. With --pick DIR:
    choose the fastest file, engine and thread count for this device within the accuracy budget."""
    if f.pick is not None:
        from edgecls.commands.bench_pick import pick_command

        return pick_command(f)
    if not f.models:
        raise click.UsageError("give MODELS to benchmark, or --pick DIR")
    from edgecls.bench import BenchOptions, benchmark_many
    from edgecls.bench.table import comparison_rows, to_csv
    from edgecls.commands.quiet import captured_output

    thread_counts = f.threads or [None]
    options = BenchOptions(image=f.image, size=f.size, runs=f.runs, duration=f.duration, warmup=f.warmup,
                           batch=f.batch, backend=f.backend, device=f.device, data=f.data,
                           cold_start=not f.no_cold_start, rounds=f.rounds or 1, sustained_s=f.sustained,
                           window_s=f.window, profile=f.profile)
    with captured_output(verbose()):
        results = benchmark_many([(model, count) for model in f.models for count in thread_counts], options)
    rows = comparison_rows(results)
    if f.csv_path:
        f.csv_path.write_text(to_csv(rows))
    if f.plot_path:
        from edgecls.bench.plot import plot_rows

        plot_rows(rows, f.plot_path, f"edgecls bench: {results[0].input}")
    if f.as_json:
        click.echo(json.dumps({"results": [r.to_dict() for r in results], "table": rows}, indent=2))
        return
    out = console()
    out.print(_comparison_table(rows, f, f"edgecls bench: {results[0].input}, {f.runs} runs"))
    for result in results if f.profile else []:
        out.print(_operator_table(result, f.runs))
    for result in results if f.sustained else []:
        out.print(_window_table(result, f.window))
    if not quiet():
        _legend(out, rows, f)


def _comparison_table(rows: list[dict], f: BenchFlags, title: str):
    """One row per model and thread count; columns only for what was measured."""
    table = make_table(title)
    columns = ["model", "holds", "threads", "size MB", "accuracy", "pre ms", "infer ms", "post ms", "p50 ms", "p99 ms",
               "FPS", f"FPS x{f.batch}", "speed-up", "rounds spread", "cold s", "RSS MB"]
    dropped = {"rounds spread": (f.rounds or 1) == 1, "accuracy": f.data is None, f"FPS x{f.batch}": f.batch == 1}
    for column in columns:
        if not dropped.get(column, False):
            table.add_column(column, justify="left" if column in ("model", "holds") else "right")
    for r in rows:
        cells = [Path(r["model"]).name, holds_text(r["quantization"], r["float_nodes"]), str(r["threads"]),
                 f"{r['size_mb']:.2f}"]
        cells += [f"{r['accuracy']:.4f}"] if f.data is not None else []
        cells += [f"{r['preprocess_p50_ms']:.3f}",
                  f"{r['inference_p50_ms']:.3f}", f"{r['postprocess_p50_ms']:.3f}", f"{r['p50_ms']:.3f}",
                  f"{r['p99_ms']:.3f}", f"{r['fps']:.0f}"]
        cells += [f"{r['batch_fps']:.0f}"] if f.batch > 1 else []
        cells += [f"{r['speedup']:.2f}x"]
        cells += [_spread_cell(r)] if (f.rounds or 1) > 1 else []
        cells += ["-" if r["cold_start_s"] is None else f"{r['cold_start_s']:.2f}", f"{r['peak_rss_mb']:.0f}"]
        table.add_row(*cells)
    return table


def _operator_table(result, runs: int):
    ops = make_table(f"{Path(result.model).name}: slowest operators over {runs} inferences")
    for column in ("node", "op", "calls", "mean ms", "share"):
        ops.add_column(column, justify="left" if column in ("node", "op") else "right")
    for op in result.operators:
        ops.add_row(op["node"], op["op_type"], str(op["calls"]), f"{op['mean_ms']:.4f}", f"{op['share']:.1%}")
    return ops


def _window_table(result, window: float):
    windows = make_table(f"{Path(result.model).name}: end-to-end latency per {window:g} s window")
    for column in ("end s", "frames", "p50 ms", "p99 ms"):
        windows.add_column(column, justify="right")
    for w in result.windows:
        windows.add_row(f"{w['end_s']:.0f}", str(w["frames"]), f"{w['p50_ms']:.3f}", f"{w['p99_ms']:.3f}")
    return windows


def _legend(out, rows: list[dict], f: BenchFlags) -> None:
    rss = ("peak of this benchmarking process (every model so far)" if f.no_cold_start
           else "peak of the fresh process classifying with the model")
    out.print("pre/infer/post/p50/p99: ms per frame (p50 of each stage); FPS: frames classified one after "
              "another per second of the timed loop (about 1000 / mean ms); speed-up: "
              f"{Path(rows[0]['model']).name}'s p50 / the row's p50; cold: fresh-process import + load + "
              f"first result; RSS: {rss}.")
    if (f.rounds or 1) > 1:
        out.print(f"rounds spread: range of the {f.rounds} per-round p50s in % of their median (and of the "
                  "per-round speed-ups); UNSTABLE over 10 %: rerun on a quieter machine.")


def _spread_cell(row: dict) -> str:
    spread, ratio = row["spread"], row["ratio_spread"]
    text = f"{spread['range_pct']:.1f} %"
    if ratio is not None and ratio["range_pct"] > 0:
        text += f" (x {1 / ratio['max']:.2f}-{1 / ratio['min']:.2f})"
    return text + ("" if spread["stable"] and (ratio is None or ratio["stable"]) else " UNSTABLE")
