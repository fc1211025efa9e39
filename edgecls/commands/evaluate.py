"""``edgecls eval``: accuracy on a labelled image folder, one model or a comparison."""

from __future__ import annotations

from pathlib import Path

import click

from edgecls.commands.common import backend_option, console, load_classifier, make_table, model_options, threads_option
from edgecls.commands.text import echo, json_line
from edgecls.runtime.card import holds_text

EPILOG = """\b
Examples:
  edgecls eval model_int8.tflite data/val
  edgecls eval model_fp32.tflite model_int8.tflite model_int8.onnx data/val --json
  edgecls eval model_int8.tflite data/val --errors
"""


@click.command("eval", epilog=EPILOG)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@backend_option
@threads_option
@click.option("--errors", "show_errors", is_flag=True, help="List the misclassified files.")
@click.option("--strict", is_flag=True, help="Stop at the first unreadable image (default: skip and list them).")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@model_options
def evaluate_command(paths, backend, threads, show_errors, strict, as_json, model_kwargs) -> None:
    """Evaluate MODEL... on DATA_DIR (one sub-folder per class, named like the labels), or, for a
    multi-label model, on a CSV list (path,labels; labels separated by spaces or |)."""
    if len(paths) < 2:
        raise click.UsageError("give at least one MODEL and a DATA_DIR")
    *models, data_dir = paths
    results, failed = _evaluate_each(models, data_dir, backend=backend, threads=threads, strict=strict,
                                     model_kwargs=model_kwargs)
    for bad in results[0].unreadable:
        echo(f"skipped: {bad['error']}", err=True)
    if as_json:
        click.echo(json_line([r.to_dict(with_errors=show_errors) for r in results]
                             + [{"model": str(m), "error": str(e)} for m, e in failed], indent=2))
        _exit_if(failed)
        return
    out = console()
    from edgecls.evaluate import MultiLabelEvalResult

    multi = [r for r in results if isinstance(r, MultiLabelEvalResult)]
    single = [r for r in results if not isinstance(r, MultiLabelEvalResult)]
    if multi:
        _print_multi_label(out, data_dir, multi, failed if not single else [])
    if single:
        _print_single_label(out, data_dir, single, failed)
    if show_errors:
        _print_errors(out, single, multi)
    _exit_if(failed)


def _evaluate_each(models, data_dir, *, backend, threads, strict, model_kwargs) -> tuple[list, list]:
    """Each model's result, and the models that failed with their errors (said on stderr; one bad model does
    not end a comparison). Raises the last error when every model failed."""
    from edgecls.evaluate import evaluate
    from edgecls.runtime.errors import EdgeclsError

    results, failed = [], []
    for model in models:
        try:
            with load_classifier(model, backend=backend, num_threads=threads, **model_kwargs) as clf:
                results.append(evaluate(clf, data_dir, strict=strict))
        except EdgeclsError as exc:
            failed.append((model, exc))
    for _, exc in failed[:-1] if not results else failed:
        echo(f"error: {exc}", err=True)
    if not results:
        raise failed[-1][1]  # every model failed: the last error is the answer (the CLI prints it)
    return results, failed


def _print_errors(out, single, multi) -> None:
    """``--errors``: each misclassified file."""
    for r in single:
        for e in r.errors:
            out.print(f"{Path(r.model).name}: {e['image']}: {e['label']} predicted as {e['predicted']} ({e['score']:.3f})")
    for r in multi:
        for e in r.errors:
            out.print(f"{Path(r.model).name}: {e['image']}: {' '.join(e['labels']) or '(none)'} predicted as "
                      f"{' '.join(e['predicted']) or '(none)'}")


def _print_multi_label(out, data_dir, results, failed) -> None:
    """A multi-label model's table: macro F1, mAP, exact match; per label when there is one model."""
    table = make_table(f"edgecls eval on {data_dir} ({results[0].images} images, multi-label)")
    for column in ("model", "holds", "macro F1", "mAP", "exact match", "images/s", "errors"):
        table.add_column(column, justify="left" if column in ("model", "holds") else "right")
    for r in results:
        table.add_row(Path(r.model).name, holds_text(r.quantization or "?", r.float_nodes), f"{r.macro_f1:.4f}",
                      f"{r.mean_average_precision:.4f}", f"{r.exact_match:.4f}", f"{r.images_per_s:.0f}",
                      str(len(r.errors)))
    for model, _ in failed:
        table.add_row(model.name, "", "failed", "", "", "", "")
    out.print(table)
    if len(results) == 1:
        r = results[0]
        per_label = make_table("per label (at the card's thresholds)")
        for column in ("label", "threshold", "precision", "recall", "F1", "AP", "support"):
            per_label.add_column(column, justify="left" if column == "label" else "right")
        for label, t, p, rec, f, ap, n in zip(r.labels, r.thresholds, r.precision, r.recall, r.f1,
                                              r.average_precision, r.support, strict=True):
            per_label.add_row(label, f"{t:.3f}", f"{p:.3f}", f"{rec:.3f}", f"{f:.3f}",
                              "-" if ap is None else f"{ap:.3f}", str(n))
        out.print(per_label)


def _print_single_label(out, data_dir, results, failed) -> None:
    """Top-1/top-5 per model; per class and the confusion matrix when there is one model."""
    table = make_table(f"edgecls eval on {data_dir} ({results[0].images} images)")
    for column in ("model", "holds", "top-1", "top-5", "images/s", "errors"):
        table.add_column(column, justify="left" if column in ("model", "holds") else "right")
    for r in results:
        table.add_row(Path(r.model).name, holds_text(r.quantization or "?", r.float_nodes), f"{r.top1:.4f}",
                      f"{r.top5:.4f}", f"{r.images_per_s:.0f}", str(len(r.errors)))
    for model, _ in failed:
        table.add_row(model.name, "", "failed", "", "", "")
    out.print(table)
    if len(results) == 1:
        r = results[0]
        per_class = make_table("per class")
        for column in ("label", "precision", "recall", "support"):
            per_class.add_column(column, justify="left" if column == "label" else "right")
        for label, p, rec, s in zip(r.labels, r.precision, r.recall, r.support, strict=True):
            per_class.add_row(label, f"{p:.3f}", f"{rec:.3f}", str(s))
        out.print(per_class)
        matrix = make_table("confusion matrix (rows: true, columns: predicted)")
        matrix.add_column("")
        for label in r.labels:
            matrix.add_column(label, justify="right")
        for label, row in zip(r.labels, r.confusion, strict=True):
            matrix.add_row(label, *(str(v) for v in row))
        out.print(matrix)


def _exit_if(failed: list) -> None:
    """Exit 1 after the table when some of the models failed (their errors went to stderr)."""
    if failed:
        raise SystemExit(1)
