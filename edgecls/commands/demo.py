"""``edgecls demo``: train, export, evaluate and benchmark the seed CNN on real digits."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import console, use_rich, verbose

EPILOG = """\b
Examples:
  edgecls demo
  edgecls demo --out /tmp/edgecls-demo
"""


@click.command(epilog=EPILOG)
@click.option("--out", "out_dir", default="edgecls-demo", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder for data, model and exports (rewritten).")
@click.option("--epochs", default=10, show_default=True, type=click.IntRange(min=1), help="Training epochs.")
@click.option("--seed", default=0, show_default=True, type=int, envvar="EDGECLS_DEMO_SEED",
              help="Seed of the training (also from EDGECLS_DEMO_SEED).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def demo(out_dir: Path, epochs: int, seed: int, as_json: bool) -> None:
    """Train the seed CNN on scikit-learn's digits, export it, and compare every file with Keras."""
    import json

    from edgecls.commands.quiet import captured_output
    from edgecls.demo import run_demo

    interactive = use_rich() and not as_json  # decided before stderr is captured
    with captured_output(verbose()) as stream:
        if interactive:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
            with Progress(*columns, console=console(stream=stream), transient=True,
                          redirect_stdout=False, redirect_stderr=False) as progress:
                task = progress.add_task("edgecls demo", total=None)
                result = run_demo(out_dir, epochs=epochs, seed=seed,
                                  on_step=lambda m: progress.update(task, description=m))
        else:
            result = run_demo(out_dir, epochs=epochs, seed=seed)
    if as_json:
        click.echo(json.dumps(result.to_dict(), indent=2))
        return
    from rich.table import Table

    table = Table(title=f"edgecls demo: seed CNN on handwritten digits ({len(list(result.val_dir.rglob('*.png')))} "
                        f"validation images), {result.seconds:.0f} s", title_justify="left")
    for column in ("format", "quantization", "size MB", "accuracy", "p50 ms", "speed-up vs Keras"):
        table.add_column(column, justify="left" if column in ("format", "quantization") else "right")
    table.add_row("Keras", "fp32 (.h5)", f"{result.model_h5.stat().st_size / 1e6:.2f}", f"{result.keras_accuracy:.4f}",
                  f"{result.keras_p50_ms:.2f}", "1.0x")
    for row in result.rows:
        table.add_row(row["format"], row["quantization"], f"{row['size_mb']:.2f}", f"{row['accuracy']:.4f}",
                      f"{row['p50_ms']:.3f}", f"{row['speedup_vs_keras']:.0f}x")
    out = console()
    out.print(table)
    out.print("p50: end to end on 640x480 BGR frames (resize, colour, inference, top-5); Keras: model.predict on one image.")
    exported = out_dir / "exported"
    out.print("\nNext, try:")
    for command in (
        f"edgecls info {exported / 'model_int8.tflite'}",
        f"edgecls predict {exported / 'model_int8.tflite'} {out_dir / 'data' / 'val' / '3'} --top-k 3",
        f"edgecls eval {exported / 'model_fp32.tflite'} {exported / 'model_int8.tflite'} {out_dir / 'data' / 'val'}",
        f"edgecls bench {exported / 'model_fp32.tflite'} {exported / 'model_int8.tflite'} {exported / 'model_int8.onnx'}",
    ):
        out.print(f"  {command}")
