"""The export report as a page a person reads (``edgecls export --report FILE.md``)."""

from __future__ import annotations

from typing import Any

from edgecls.runtime.card import float_node_count, holds_text

__all__ = ["render_markdown"]


def _pt(value: float | None) -> str:
    return "—" if value is None else f"{value:+.2f}"


def _num(value: float | None, digits: int = 4) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Any) -> str:
    """Markdown for an :class:`~edgecls.converters.report.ExportResult`, from its one serializer
    (:meth:`~edgecls.converters.report.ExportResult.to_dict`): the files, each ladder's
    candidates, the worst layers and per-class changes of each int8 file, the calibration profile and
    the warnings."""
    data = report.to_dict()
    head, output = data.get("head") or {}, data.get("output") or {}
    multi = output.get("kind") == "multi-label"
    lines = [f"# Export of {data['source']}", "",
             f"Validated on {data['validation_source']}; {data['seconds']} s; report {report.path}.", ""]
    if head:
        lines += [f"Head: {head['kind']} ({head['chosen_by']}); baked after it: {head.get('baked') or 'nothing'}; "
                  "every file outputs probabilities. Evidence: "
                  + "; ".join(_cell(f"{e['source']}: {e['seen']}") for e in head.get("evidence", [])) + ".", ""]
    if output.get("thresholds"):
        lines += ["Thresholds: " + ", ".join(f"{_cell(label)} {t:.3f}" for label, t in
                                             zip(data["labels"], output["thresholds"], strict=True)) + ".", ""]
    lines += [f"| file | holds | size MB | {'label-set' if multi else 'top-1'} agreement | "
              f"{'macro F1' if multi else 'accuracy'} | Keras | drop pt | passed |",
              "|---|---|---|---|---|---|---|---|"]
    for f in data["files"]:
        v = f["validation"]
        floats = float_node_count(f["quantization_ladder"])
        lines.append(f"| {_cell(f['path'].rsplit('/', 1)[-1])} | {holds_text(f['rung'], floats)} "
                     f"| {f['size_bytes'] / 1e6:.2f} | {_num(v['top1_agreement'])} | {_num(v['accuracy'])} "
                     f"| {_num(v['keras_accuracy'])} | {_pt(v['accuracy_drop_pt'])} | {'yes' if f['passed'] else 'NO'} |")
    quantization = data.get("quantization") or {}
    warnings = quantization.get("warnings") or []
    lines += ["", "## Warnings", ""]
    lines += [f"- **{w['cause']}**: {_cell(w['message'])}" for w in warnings] or ["None."]
    for f in data["files"]:
        ladder, why = f["quantization_ladder"], f["quantization_report"]
        if not ladder and not why:
            continue
        name = _cell(f["path"].rsplit("/", 1)[-1])
        lines += ["", f"## {name}", ""]
        if ladder:
            lines += [f"Quantization ladder: {_cell(ladder['reason'])}.", "",
                      "| rung | float nodes | agreement | drop pt | ms | within budget | note |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {c['rung']} | {len(c['float_layers'])} | {_num(c['top1_agreement'])} | {_pt(c['accuracy_drop_pt'])} "
                      f"| {_num(c['latency_ms'], 3)} | {'yes' if c['within_budget'] else 'no'} | {_cell(c['note'] or '')} |"
                      for c in ladder["candidates"]]
            lines.append("")
        if why:
            if why.get("note"):
                lines += [_cell(why["note"]), ""]
            lines += ["Layers with the worst quantization error:", "", "| layer | op | error | metric |", "|---|---|---|---|"]
            lines += [f"| {_cell(w['layer'])} | {w['op']} | {w['error']:.3f} | {w['metric']} |" for w in why["worst_layers"]]
            if why["classes"]:
                lines += ["", "Classes that changed most (accuracy, Keras → this file):", "",
                          "| class | images | Keras | file | change pt |", "|---|---|---|---|---|"]
                lines += [f"| {_cell(c['label'])} | {c['images']} | {c['keras_accuracy']:.4f} | {c['accuracy']:.4f} "
                          f"| {c['change_pt']:+.2f} |" for c in why["classes"][:10]]
    calibration = quantization.get("calibration")
    if calibration:
        predicted = ", ".join(f"{_cell(k)} {v}" for k, v in calibration["predicted_classes"].items())
        lines += ["", "## Calibration images", "",
                  f"- {calibration['images']} images"
                  + (f" in {calibration['folder_classes']} class folders" if calibration["folder_classes"] else ""),
                  f"- classes the Keras model gives them: {predicted}",
                  f"- duplicates: {calibration['exact_duplicates']} exact, {calibration['near_duplicates']} near",
                  f"- pixel mean {calibration['pixel_mean']} (std {calibration['pixel_std']}); validation images "
                  f"{calibration['validation_pixel_mean']} (std {calibration['validation_pixel_std']}); grey-level "
                  f"histogram overlap {calibration['histogram_overlap']}"]
    return "\n".join(lines) + "\n"
