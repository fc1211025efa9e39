"""``export()``: Keras classifier → validated TFLite/ONNX files with embedded model cards."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgecls.converters.atomic import atomic_write_bytes, check_writable
from edgecls.converters.candidates import FileMaker
from edgecls.converters.checked import (
    CheckedImages,
    Dataset,
    calibration_images,
    checked_images,
    find_head,
    thresholds_for,
    truths,
)
from edgecls.converters.data import ArrayReader
from edgecls.converters.decisions import SINGLE_LABEL, Decisions
from edgecls.converters.errors import ExportError, OutputExistsError
from edgecls.converters.export_options import ExportOptions
from edgecls.converters.formats.base import ConvertJob, get_format
from edgecls.converters.frigate import check_frigate_input, write_frigate_folder
from edgecls.converters.heads import Head, head_labels
from edgecls.converters.ladder import Budget, climb, get_ladder
from edgecls.converters.ladder.climb import LadderResult
from edgecls.converters.loading import LoadedModel, from_model, load_custom_objects, load_keras_model
from edgecls.converters.normalization import PixelNormalization, choose_normalization, wrap_with_normalization
from edgecls.converters.pixel_check import PixelCheck, check_pixels
from edgecls.converters.profiling import with_profile
from edgecls.converters.provenance import CardFacts, resolve_labels, sha256_of
from edgecls.converters.quant_report import calibration_warnings, class_changes, profile_calibration
from edgecls.converters.report import (
    CalibrationCheck,
    ExportedFile,
    ExportResult,
    QuantizationReport,
    labels_name,
    report_name,
)
from edgecls.converters.signing import sign_export
from edgecls.converters.validate import keras_scores
from edgecls.converters.workspace import export_workspace
from edgecls.runtime.card import InputSpec, Normalization
from edgecls.runtime.datasets import open_dataset
from edgecls.runtime.memory import peak_rss_mb
from edgecls.version import __version__

__all__ = ["ExportOptions", "ExportResult", "export"]

MIN_CHECK_IMAGES = 30
"""Labelled images needed before the pixel normalization is checked (fewer cannot tell presets apart)."""


def _load(model: Any, opts: ExportOptions) -> LoadedModel:
    if isinstance(model, (str, Path)):
        custom = opts.custom_objects
        if isinstance(custom, (str, Path)):
            custom = load_custom_objects(custom)
        return load_keras_model(model, unsafe=opts.unsafe, custom_objects=custom, input_size=opts.input_size)
    return from_model(model, None, input_size=opts.input_size)


def _targets(opts: ExportOptions, stem: str, out_dir: Path) -> list[tuple[Any, str, Path]]:
    targets = [(get_format(f), q, out_dir / f"{stem}_{q}{get_format(f).suffix}") for f in opts.formats for q in opts.quantize]
    if not opts.force:
        existing = [str(p) for p in [*(p for _, _, p in targets), out_dir / report_name(stem),
                                     out_dir / labels_name(stem)] if p.exists()]
        if existing:
            raise OutputExistsError(f"{existing[0]}: already exists; pass force=True to overwrite"
                                    + (f" ({len(existing)} files)" if len(existing) > 1 else ""), options=("force",))
    return targets


def _check_calibration_given(opts: ExportOptions) -> None:
    if opts.calibration is None and "int8" in opts.quantize:
        raise ExportError("int8 needs calibration images: pass calibration= (a folder of representative images, "
                          "class sub-folders allowed, or an array)", options=("calibration",))


class _Progress:
    """Calls ``on_step(message, files done, files to write)`` as each step starts."""

    def __init__(self, on_step: Callable[[str, int, int], None] | None) -> None:
        self.on_step, self.done, self.total = on_step, 0, 0

    def __call__(self, message: str) -> None:
        if self.on_step is not None:
            self.on_step(message, self.done, self.total)


def export(model: Any, out_dir: str | Path | None = None, options: ExportOptions | None = None, *,
           on_step: Callable[[str, int, int], None] | None = None, **keywords: Any) -> ExportResult:
    """Export a Keras image classifier to every requested format × quantization, and validate each file.

    Order: load the model, read the images, check the pixel normalization on
    labelled images, convert each format's fp32 graph (so a model that cannot
    convert fails before any other work), then quantize, validate and write each file.
    The work happens in a scratch folder (:mod:`edgecls.converters.workspace`), the process's
    temporary folder meanwhile, removed at the end.

    Args:
        model: a path (``.h5``, ``.keras``, SavedModel folder) or an in-memory Keras model.
        out_dir: output folder (default: next to the model file, else the current folder).
        options: the export's :class:`ExportOptions`.
        on_step: called as each step starts with (message, files done, files to write), for progress display.
        **keywords: instead of ``options``, its fields as keywords (``export(m, quantize=["int8"], ...)``),
            and a format's options too (``opset=13`` sets ``OnnxOptions.opset``; see
            :meth:`ExportOptions.from_keywords`).

    Returns:
        The typed :class:`ExportResult` (also written as ``<name>_report.json``); ``result.ok`` is False
        when a file missed its minimum top-1 agreement (the file is kept, marked failed).

    Raises:
        UnsafeModelError: the model file holds code and ``unsafe`` is False (see
            :mod:`edgecls.converters.safe_mode`).
        ExportError: bad options, unloadable or unsupported model, labels that do
            not match, int8 without calibration data, a pixel normalization that
            another preset clearly beats or that leaves the model near chance on
            labelled images, conversion failure (naming the layer and format).
        OutputExistsError: an output exists and ``force`` is False.
    """
    if options is not None and keywords:
        raise ExportError(f"give the export's options as an ExportOptions or as keywords, not both "
                          f"(got {', '.join(sorted(keywords))} too)")
    opts = options if options is not None else ExportOptions.from_keywords(keywords)
    # what can be checked without TensorFlow is checked first: a mistake costs a second, not the import
    source = Path(model) if isinstance(model, (str, Path)) else None
    out_dir = Path(out_dir) if out_dir is not None else (source.parent if source else Path.cwd())
    targets = _targets(opts, opts.name or (source.stem if source else "model"), out_dir)
    _check_calibration_given(opts)
    with export_workspace() as work:
        return _export(model, out_dir, opts, targets, work / "convert", _Progress(on_step))


@dataclass
class _Plan:
    """What the export decided before converting anything: the stages' typed results (load, images, head,
    labels, normalization, thresholds) that every format's files are made from."""

    stem: str
    loaded: LoadedModel
    spec: InputSpec
    reader: ArrayReader | None
    calib_data: Dataset | None
    calib_summary: dict[str, Any]
    checked: CheckedImages
    head: Head
    labels: list[str]
    targets: np.ndarray | None
    norm: PixelNormalization
    pixels: PixelCheck | None
    reference: np.ndarray
    thresholds: tuple[float, ...] | None
    wrapped: Any
    sha256: str
    notes: list[str]

    @property
    def decisions(self) -> Decisions:
        return Decisions(self.thresholds) if self.thresholds is not None else SINGLE_LABEL


def _export(model: Any, out_dir: Path, opts: ExportOptions, targets: list[tuple[Any, str, Path]], work: Path,
            step: _Progress) -> ExportResult:
    """The stages: load → images → head → labels → normalization (checked) → per format: convert → quantize
    (or climb the ladder) → embed the card → validate → write; then the report."""
    start = time.perf_counter()
    source = Path(model) if isinstance(model, (str, Path)) else None
    step.total = len(targets)
    step("loading the Keras model")
    plan = _plan(_load(model, opts), opts, opts.name or (source.stem if source else "model"), step)
    report = _new_report(plan, opts, out_dir)
    _prepare_out_dir(out_dir)
    work.mkdir()
    job = ConvertJob(plan.wrapped, plan.loaded.height, plan.loaded.width, plan.loaded.channels, plan.reader, work,
                     options={c.name: opts.options_for(c.name) for c, _, _ in targets})
    # The Keras reference was computed first (finding the head, the pixel check): Keras' activations are
    # freed before the conversions' graphs pile up (the other order raised DenseNet121's peak by 1.5 GB).
    for converter in dict.fromkeys(c for c, _, _ in targets):
        step(f"converting to {converter.name}")
        converter.prepare(job)  # fails fast, naming the layer, before quantization and validation
    warnings = []
    if plan.reader is not None and "int8" in opts.quantize:
        step("profiling the calibration images")
        warnings = _calibration_warnings(report, plan, opts)
    written: set[Path] = set()
    for target in targets:
        report.files.append(_make_file(target, plan, job, opts, warnings, written, step))
        step.done += 1
    report.notes += job.notes
    report.labels_path = out_dir / labels_name(plan.stem)  # beside the files: what Frigate and others read
    atomic_write_bytes(report.labels_path, "".join(f"{label}\n" for label in plan.labels).encode(), overwrite=True)
    if opts.frigate is not None:
        step("writing the Frigate model folder")
        report.frigate = write_frigate_folder(report, Path(opts.frigate))
    if opts.sign is not None:
        step("signing the files")
        report.signatures = sign_export(report, opts.sign, opts.sign_passphrase)
    report.seconds = time.perf_counter() - start
    report.peak_rss_mb = peak_rss_mb()
    report.path = out_dir / report_name(plan.stem)
    atomic_write_bytes(report.path, report.to_json().encode(), overwrite=True)
    return report


def _plan(loaded: LoadedModel, opts: ExportOptions, stem: str, step: _Progress) -> _Plan:
    """Everything decided from the Keras model and the images, before any conversion. Raises ExportError."""
    notes = list(loaded.notes)
    spec = InputSpec(height=loaded.height, width=loaded.width, channels=loaded.channels,
                     color="gray" if loaded.channels == 1 else "rgb", resize=opts.resize, crop=opts.crop)
    if opts.frigate is not None:
        check_frigate_input(spec)  # before any conversion
    step("reading calibration images")
    reader, calib_data, calib_summary = calibration_images(opts, spec)
    val_data = open_dataset(opts.validation) if opts.validation is not None else None
    checked = checked_images(val_data, calib_data, reader, calib_summary, spec, notes)
    step("finding the model's head")
    requested = "custom" if opts.mean is not None else (opts.pixels or "auto")
    norm, norm_notes = choose_normalization(loaded.model, pixels=opts.pixels, mean=opts.mean, std=opts.std,
                                            channels=loaded.channels)
    notes += norm_notes
    head, raw = find_head(loaded, opts, checked, norm)
    notes.append(_head_note(head))
    labels = resolve_labels(opts.labels, [val_data, calib_data], head.classes(loaded.num_classes), notes)
    labels = head_labels(head, labels, opts.positive)
    targets = truths(checked.dataset, labels, head)
    if opts.max_drop is not None and targets is None:
        raise ExportError("max_drop needs labelled validation images (class folders, or a CSV list of path,labels, "
                          "in the validation or calibration images)", options=("validation",))
    step("checking the pixel normalization")
    norm, pixels = _normalization(loaded, norm, requested, checked.images, targets, notes, head, raw)
    reference = pixels.scores if pixels is not None else head.probabilities(raw)
    thresholds = thresholds_for(opts, head, reference, targets, labels)
    spec = replace(spec, normalization=Normalization(baked=True, mean=norm.mean, std=norm.std))
    wrapped = head.apply(wrap_with_normalization(loaded.model, norm, loaded.height, loaded.width, loaded.channels))
    if "dynamic" in opts.quantize:
        notes.append("dynamic-range models dequantize weights at run time: on x86 they are slower than fp32")
    return _Plan(stem, loaded, spec, reader, calib_data, calib_summary, checked, head, labels, targets, norm, pixels,
                 reference, tuple(thresholds) if thresholds is not None else None, wrapped,
                 sha256_of(loaded.source), notes)


def _new_report(plan: _Plan, opts: ExportOptions, out_dir: Path) -> ExportResult:
    """The result, before any file: what was decided and with which options."""
    return ExportResult(
        source=str(plan.loaded.source or "in-memory model"), source_sha256=plan.sha256, out_dir=out_dir,
        labels=plan.labels, normalization=plan.norm, validation_source=plan.checked.source,
        calibration=plan.calib_summary, notes=plan.notes, pixels=plan.pixels, options=opts, head=plan.head,
        thresholds=plan.thresholds)


def _prepare_out_dir(out_dir: Path) -> None:
    """Raises ExportError: the folder cannot be made or written."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create the output folder ({exc.strerror or exc})") from None
    check_writable(out_dir)


def _make_file(target: tuple[Any, str, Path], plan: _Plan, job: ConvertJob, opts: ExportOptions, warnings: list,
               written: set[Path], step: _Progress) -> ExportedFile:
    """One requested file (format, quantization, path): converted (or the ladder's choice), its card embedded,
    validated, written whole."""
    converter, quantization, path = target
    t0 = time.perf_counter()
    step(f"converting to {converter.name} {quantization}")
    card = CardFacts(name=plan.stem, labels=plan.labels, spec=plan.spec, fmt=converter.name,
                     source=plan.loaded.source, sha256=plan.sha256, version=__version__,
                     calibration=plan.calib_summary, head=plan.head.to_dict(), thresholds=plan.thresholds,
                     model_version=opts.model_version)
    files = FileMaker(converter, job.workdir, card, plan.checked.images, plan.reference, plan.targets,
                      plan.checked.source, plan.decisions)
    data, scheme, known, ladder = _quantized(converter, quantization, job, files, opts, plan.notes, step)
    path = _named_for(path, plan.stem, quantization, ladder)
    step(f"validating {path.name}")
    final, validation, predicted = files.final(data, scheme, ladder, known)
    final = with_profile(final, converter, path.suffix, plan.checked, job.workdir, plan.notes)
    if path in written and ladder is not None:  # the ladder chose what a requested file holds
        plan.notes.append(f"{converter.name} {quantization}: the ladder chose {ladder.chosen.rung}, which "
                          f"{path.name} holds already")
    else:  # (a requested file whose name a ladder's answer took first replaces it: the same model)
        atomic_write_bytes(path, final, overwrite=opts.force or path in written)
    written.add(path)
    why = None
    if quantization == "int8":
        step(f"measuring {path.name}'s per-layer quantization error")
        why = _why(converter, job, ladder, predicted, plan, warnings)
    return ExportedFile(path, converter.name, quantization, len(final), validation, opts.agreement_for(quantization),
                        time.perf_counter() - t0, max_drop=opts.max_drop, ladder=ladder, quantization_report=why)


def _quantized(converter: Any, quantization: str, job: ConvertJob, files: FileMaker, opts: ExportOptions,
               notes: list[str], step: _Progress) -> tuple[bytes, str, Any, LadderResult | None]:
    """One requested file's (bytes, what it holds, its validation if known, the ladder's result): under a
    budget, the ladder's choice; else the conversion, and for int8 (with ``opts.ladder``) the ladder's
    choice under the default check when full int8 misses it.

    Raises:
        ExportError: no full-int8 rung could be built.
    """
    budget = Budget(opts.max_drop, opts.min_agreement)
    if quantization == "int8" and budget.given:
        return _climbed(converter, job, budget, files, opts, step)
    data = converter.convert(job, quantization)
    floor = opts.agreement_for(quantization)
    if quantization != "int8" or not opts.ladder or floor is None:
        return data, quantization, None, None
    validation = files.validate(data)
    if validation.top1_agreement >= floor:
        return data, quantization, validation, None
    climbed = _climbed(converter, job, Budget(None, floor), files, opts, step)
    ladder = climbed[3]
    notes.append(f"{converter.name} int8: full int8 agreed with Keras on {validation.top1_agreement:.4f} of the "
                 f"images, under the default {floor:g}; the quantization ladder "
                 + (f"chose {ladder.chosen.rung}" if ladder.chosen else "found no file that holds it")
                 + " (no_ladder / --no-ladder fails the file instead)")
    return climbed


def _climbed(converter: Any, job: ConvertJob, budget: Budget, files: FileMaker, opts: ExportOptions,
             step: _Progress) -> tuple[bytes, str, Any, LadderResult]:
    ladder = climb(get_ladder(converter.name), job, budget, files.validate,
                   files.latencies_ms if opts.time_candidates else None, step, max_rung=opts.max_rung)
    written = ladder.written
    if written is None:  # no full-int8 rung could even be built
        raise ExportError(f"{converter.name}: {ladder.reason}")
    return ladder.data, written.rung, written.validation, ladder


def _named_for(path: Path, stem: str, quantization: str, ladder: LadderResult | None) -> Path:
    """The file's name after what it holds: an int8 request answered by int8 (float nodes or not) keeps
    ``STEM_int8``; one the ladder answered with int16, fp16 or fp32 is ``STEM_int16`` and so on."""
    chosen = ladder.chosen if ladder is not None else None
    if chosen is None or chosen.kind in ("int8", "selective"):
        return path
    holds = "int16" if chosen.kind == "int16" else chosen.rung
    return path.with_name(f"{stem}_{holds}{path.suffix}") if holds != quantization else path


def _calibration_warnings(report: ExportResult, plan: _Plan, opts: ExportOptions) -> list:
    """Profile the calibration images into ``report.quantization``; the warnings they call for."""
    images = plan.reader.images  # already one array (``_calibration``): no copy
    classes = plan.calib_data.classes if plan.calib_data is not None else None
    profile = profile_calibration(images, plan.checked.images, keras_scores(plan.wrapped, images, source=report.source),
                                  plan.labels, len(classes) if classes else None)
    warnings = calibration_warnings(profile, len(plan.labels), plan.pixels.to_dict() if plan.pixels else None)
    report.quantization = CalibrationCheck(profile, warnings)
    return warnings


def _why(converter: Any, job: ConvertJob, ladder: Any, predicted: np.ndarray, plan: _Plan,
         warnings: list) -> QuantizationReport:
    """One int8 file's quantization report: its worst layers, per-class changes, the export's warnings."""
    worst, note = (ladder.worst_layers if ladder is not None else []), None
    if not worst:
        try:
            worst = get_ladder(converter.name).rank(job, "int8")
        except ExportError as exc:  # the report is an explanation: without it the file is still good
            note = f"per-layer error not measured: {exc}"
    targets = None if plan.head.multi_label else plan.targets
    classes = class_changes(predicted, plan.reference.argmax(1), targets, plan.labels) if targets is not None else []
    return QuantizationReport(list(worst[:10]), classes, list(warnings), note)


def _normalization(loaded: LoadedModel, norm: PixelNormalization, requested: str, images: np.ndarray,
                   targets: np.ndarray | None, notes: list[str], head: Head,
                   raw: np.ndarray) -> tuple[PixelNormalization, PixelCheck | None]:
    """The normalization to bake, checked on labelled images when there are enough (see ``pixel_check``);
    ``raw`` are the model's outputs under ``norm`` already (a multi-label model's: one per label, judged at
    0.5 each)."""
    decisions = Decisions((0.5,) * raw.shape[1]) if head.multi_label else SINGLE_LABEL
    if targets is None or len(targets) < MIN_CHECK_IMAGES:
        notes.append(f"pixel normalization not checked: that needs {MIN_CHECK_IMAGES} or more labelled images "
                     "(class folders, or a CSV list, in the validation or calibration images)")
        return norm, None
    source = str(loaded.source or "model")

    def scorer(model: Any, pixels: np.ndarray) -> np.ndarray:
        return head.probabilities(keras_scores(model, pixels, source=source))

    norm, check = check_pixels(loaded, norm, requested=requested, images=images,
                               targets=targets, scorer=scorer, decisions=decisions,
                               known={norm.name: head.probabilities(raw)})
    notes.append(f"pixels: {check.reason}")
    return norm, check


def _head_note(head: Head) -> str:
    evidence = "; ".join(f"{e.source}: {e.seen}" for e in head.evidence if e.source != "head")
    baked = f"; exported with {head.baked} after it, so every file outputs probabilities" if head.baked else ""
    return f"head: {head.kind} ({'given' if head.chosen else 'detected'}{': ' + evidence if evidence else ''}){baked}"
