"""``edgecls bench --pick DIR``: the table of every candidate, the choice, and ``DIR/deploy.json``."""

from __future__ import annotations

from typing import Any

import click

from edgecls.commands.common import console, make_table, quiet
from edgecls.commands.text import echo, json_line


def pick_command(f: Any) -> None:
    """Run :func:`edgecls.bench.pick.pick` with ``edgecls bench``'s flags and print what it found."""
    from edgecls.bench.pick import PickOptions, pick
    from edgecls.commands.common import verbose
    from edgecls.commands.quiet import captured_output

    if f.models:
        raise click.UsageError("--pick measures the files of its folder: give no MODELS with it")
    if f.data is None:
        raise click.UsageError("--pick needs --data IMAGES: each candidate must classify them within its budget")
    options = PickOptions(data=f.data, threads=tuple(f.threads) if f.threads else None, rounds=f.rounds or 5,
                          runs=f.runs, warmup=f.warmup, size=f.size, min_agreement=f.min_agreement,
                          max_drop=f.max_drop)
    with captured_output(verbose()):
        deployment, candidates = pick(f.pick, options)
    if f.as_json:
        click.echo(json_line(deployment.to_dict()))
        return
    table = make_table(f"edgecls bench --pick {f.pick}: {len(candidates)} candidates, {options.rounds} rounds "
                       f"of {options.runs} on {f.size[0]}x{f.size[1]} frames")
    for column in ("file", "engine", "threads", "agreement", "accuracy", "p50 ms", "rounds (min-max)", ""):
        table.add_column(column, justify="left" if column in ("file", "engine", "") else "right")
    ranked = sorted(candidates, key=lambda c: (c.discarded is not None, c.p50_ms))
    for c in ranked:
        chosen = (c.file, c.backend, c.threads) == (deployment.file, deployment.backend, deployment.threads)
        rounds = f"{min(c.round_p50_ms):.2f}-{max(c.round_p50_ms):.2f}" if c.round_p50_ms else "-"
        table.add_row(c.file, c.backend, str(c.threads), f"{c.agreement:.4f}",
                      "-" if c.accuracy is None else f"{c.accuracy:.4f}",
                      "-" if not c.round_p50_ms else f"{c.p50_ms:.3f}", rounds,
                      "picked" if chosen else (c.discarded or ""))
    console().print(table)
    echo(f"picked {deployment.summary()}; wrote {f.pick / 'deploy.json'}")
    if not quiet():
        echo("agreement: top-1 agreement with the folder's fp32 file on its default engine; p50: the median of "
             "the per-round medians of one classify of a frame, end to end.")
