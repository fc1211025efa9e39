"""The Classifier: load an exported model and classify images with it.

Thread safety: one :class:`Classifier` may be shared by several threads.
Preprocessing and postprocessing run concurrently; inference is serialized
per model for LiteRT (its Interpreter is not thread-safe) and concurrent for
ONNX Runtime (its session is). For parallel LiteRT inference, create one
Classifier per thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgecls.runtime.backends import Backend, BackendConfig, open_backend, run_filled
from edgecls.runtime.card import ModelCard
from edgecls.runtime.deploy import deployed_options
from edgecls.runtime.errors import InferenceError, OptionError, engine_errors
from edgecls.runtime.fingerprint import file_sha256
from edgecls.runtime.images import DecodeTarget, ImageInput, to_pixels
from edgecls.runtime.monitor import Monitor, monitor_for
from edgecls.runtime.options import ClassifierOptions, ClassifyOptions, options_from
from edgecls.runtime.postprocess import Postprocessor
from edgecls.runtime.preprocess import Preprocessor
from edgecls.runtime.regions import CropPolicy
from edgecls.runtime.resolve import resolve_card
from edgecls.runtime.results import Category, ClassificationResult, RegionResult, Timings
from edgecls.runtime.trust import Trust

if TYPE_CHECKING:
    from edgecls.runtime.capture import CaptureOptions, HardExamples
    from edgecls.runtime.explain import Explanation
    from edgecls.runtime.live import LiveSession, ResultCallback
    from edgecls.runtime.stream import Stream, StreamOptions

__all__ = ["Classifier"]

logger = logging.getLogger("edgecls")


def _ms(start: float, end: float) -> float:
    return (end - start) * 1000.0


class Classifier:
    """An image classifier backed by LiteRT, ONNX Runtime or OpenVINO.

    Create it with :meth:`from_path` or :meth:`from_options`; use it as a
    context manager or call :meth:`close`.
    """

    def __init__(self, backend: Backend, card: ModelCard, *, path: Path, has_card: bool,
                 notes: Sequence[str], defaults: ClassifyOptions, monitor: Monitor | None = None) -> None:
        self._backend = backend
        self._monitor = monitor
        self._card = card
        self._path = path
        self._sha256: str | None = None
        self._has_card = has_card
        self._notes = tuple(notes)
        self._defaults = defaults
        self._pre = Preprocessor(card.input)
        self._post = Postprocessor(card, backend.output, infer_kind=not has_card, path=str(path))
        self._post.check(defaults)
        for note in self._notes:  # what was assumed for this file: a warning, once per file
            logger.warning("%s", note)

    # -- construction ---------------------------------------------------------------
    @classmethod
    def from_options(cls, options: ClassifierOptions) -> Classifier:
        """Load a model as ``options`` say; a folder: the file, engine and threads its ``deploy.json`` names
        (:mod:`edgecls.runtime.deploy`, said in ``notes``).

        Raises:
            ModelLoadError: missing, empty, corrupt or non-classifier model file; a folder without a usable
                deploy.json.
            UnsupportedFormatError: a suffix no backend reads (or the named backend does not).
            BackendUnavailableError: the engine is not installed (``.extra`` names the pip extra).
            DeviceUnavailableError: ``device="gpu"`` without a usable GPU.
            CardError: the embedded model card contradicts the model.
            OptionError: invalid backend, device, threads, labels, mean/std, resize or classify options.
            SignatureError: trusted keys are set and the file is not signed by one (DowngradeError: older
                than a version accepted before).
        """
        options, deployed = deployed_options(options)
        path, trust = Path(options.model_path), Trust.of(options.trusted_keys)
        verified = trust.verify(path) if trust is not None else None  # before anything reads the file
        cache = options.cache_dir and str(options.cache_dir)
        backend = open_backend(path, options.backend, BackendConfig(options.num_threads, options.device, cache_dir=cache))
        try:
            card, has_card, notes = resolve_card(backend, path, labels=options.labels, mean=options.mean,
                                                 std=options.std, resize=options.resize)
            if trust is not None:
                trust.loaded(verified, card)
            notes = (*backend.notes, *notes, *([deployed] if deployed else []))
            return cls(backend, card, path=path, has_card=has_card, notes=notes, defaults=options.classify,
                       monitor=monitor_for(card, options.monitor))
        except BaseException:
            backend.close()
            raise

    @classmethod
    def from_backend(cls, backend: Backend, *, labels: Sequence[str] | None = None,
                     classify: ClassifyOptions | None = None, name: str | None = None) -> Classifier:
        """A classifier on an engine already open (a third-party :class:`Backend`; in tests, ``FakeBackend``),
        its card the backend's (else inferred); ``name`` stands for the file in messages. It closes the backend.

        Raises:
            CardError, ModelLoadError: as :meth:`from_options`, from the backend's card and tensors.
            OptionError: ``labels`` of the wrong count, invalid ``classify`` options.
        """
        path = Path(name or f"<{backend.name}>")
        card, has_card, notes = resolve_card(backend, path, labels=labels)
        return cls(backend, card, path=path, has_card=has_card, notes=(*backend.notes, *notes),
                   defaults=classify or ClassifyOptions())

    @classmethod
    def from_path(cls, path: str | Path, *, backend: str = "auto", num_threads: int | None = None,
                  device: str = "cpu", labels: Sequence[str] | str | Path | None = None, resize: str | None = None,
                  trusted_keys: Any = None, **more: Any) -> Classifier:
        """Load ``path`` (``.tflite`` or ``.onnx``); ``labels``: a list, or a labels file (one per line);
        ``trusted_keys``: public key files (or a :class:`~edgecls.runtime.trust.Trust`), one of which must have
        signed the file; ``mean=``, ``std=``, ``monitor=``, ``classify=``: see :class:`ClassifierOptions`.
        Raises as :meth:`from_options`."""
        return cls.from_options(options_from(ClassifierOptions, {
            "model_path": path, "backend": backend, "device": device, "num_threads": num_threads, "labels": labels,
            "resize": resize, "trusted_keys": trusted_keys, **more}, what="Classifier.from_path"))

    # -- properties -----------------------------------------------------------------
    @property
    def card(self) -> ModelCard:
        """The effective model card (embedded, or inferred for a model without one)."""
        return self._card

    @property
    def has_card(self) -> bool:
        """Whether the model file carries an edgecls model card."""
        return self._has_card

    @property
    def labels(self) -> tuple[str, ...]:
        return self._card.labels

    @property
    def notes(self) -> tuple[str, ...]:
        """What was assumed or decided on the caller's behalf (a card ignored, defaults used, a device
        fallen back), and the warnings the first scores called for; each logged once as a warning."""
        return (*self._notes, *self._post.warnings)

    @property
    def backend(self) -> Backend:
        """The engine running the model (name, device, accelerators, tensors)."""
        return self._backend

    @property
    def path(self) -> Path:
        return self._path

    @property
    def sha256(self) -> str:
        """SHA-256 of the model file, read once (at the first use) and kept."""
        if self._sha256 is None:
            self._sha256 = file_sha256(self._path)
        return self._sha256

    @property
    def decode_target(self) -> DecodeTarget:
        """The smallest picture this model needs (JPEG files and bytes are decoded at the scale that fits it)."""
        return self._pre.target

    # -- running --------------------------------------------------------------------
    def _options(self, max_results, score_threshold, allowlist, denylist) -> ClassifyOptions:
        given = {"max_results": max_results, "score_threshold": score_threshold, "allowlist": allowlist,
                 "denylist": denylist}
        if all(value is None for value in given.values()):
            return self._defaults
        options = replace(self._defaults, **{name: value for name, value in given.items() if value is not None})
        self._post.check(options)
        return options

    @property
    def monitor(self) -> Monitor | None:
        """The drift monitor reading every classified image (``monitor=`` at load), else None."""
        return self._monitor

    @property
    def preprocessor(self) -> Preprocessor:
        """What turns pixels into this model's input (``into`` a batch buffer, for callers that batch)."""
        return self._pre

    @property
    def multi_label(self) -> bool:
        """Whether each label is scored on its own (a multi-label head) rather than one distribution."""
        return self._post.multi_label

    def preprocess(self, image: ImageInput, *, color: str = "bgr", resize: str | None = None,
                   sample: str = "area") -> np.ndarray:
        """The model input for ``image`` (no batch axis), fitted by ``resize`` (default: the card's mode) and
        shrunk by ``sample`` (``area``, ``linear``, ``warp``); a JPEG is decoded at the smallest scale that
        keeps the input's resolution. Raises ImageError, OptionError."""
        return self._pre(to_pixels(image, color=color, target=self._pre.target), resize=resize, sample=sample)

    def classify(self, image: ImageInput, *, max_results: int | None = None, score_threshold: float | None = None,
                 allowlist: Iterable[str] | None = None, denylist: Iterable[str] | None = None,
                 color: str = "bgr") -> ClassificationResult:
        """Classify one image (BGR ndarray by default, ``color="rgb"`` for RGB; or a path or bytes).

        Raises:
            ImageError: unreadable image, bad shape or dtype.
            OptionError: invalid options, unknown labels in allowlist/denylist, both lists.
            InferenceError: the engine failed, or returned another number of scores than the model has labels.
        """
        options = self._options(max_results, score_threshold, allowlist, denylist)
        t0 = time.perf_counter()
        pixels = to_pixels(image, color=color, target=self._pre.target)
        filled: list[Any] = []  # the monitor's reading of the input (while it is hot), and when it was written

        def fill(slot: np.ndarray) -> None:  # straight into the engine's input where it has one
            self._pre.into(pixels, slot)
            filled.extend((self._monitor.read(slot[None]) if self._monitor is not None else None, time.perf_counter()))

        with engine_errors(InferenceError, f"{self._path}: inference failed"):
            raw = run_filled(self._backend, fill, self._pre.spare())
        t2 = time.perf_counter()
        scores = self._post.scores(self._checked(raw, 1))
        if filled[0] is not None:
            self._monitor.add(filled[0], scores)
        categories = self._post.categories(scores[0], options)
        timings = Timings(_ms(t0, filled[1]), _ms(filled[1], t2), _ms(t2, time.perf_counter()))
        return ClassificationResult(categories, timings, scores[0], self._post.multi_label)

    def classify_batch(self, images: Sequence[ImageInput], *, max_results: int | None = None,
                       score_threshold: float | None = None, allowlist: Iterable[str] | None = None,
                       denylist: Iterable[str] | None = None, color: str = "bgr") -> list[ClassificationResult]:
        """Classify several images in one inference call when the model allows a batch.

        Raises as :meth:`classify`; the first bad image raises and nothing is returned.
        """
        options = self._options(max_results, score_threshold, allowlist, denylist)
        if len(images) == 0:
            return []
        t0 = time.perf_counter()
        batch = self._batch(images, color)
        t1 = time.perf_counter()
        scores = self.scores_of_inputs(batch)
        t2 = time.perf_counter()
        results, n = [], len(images)
        for row in scores:
            t3 = time.perf_counter()
            categories = self._post.categories(row, options)
            timings = Timings(_ms(t0, t1) / n, _ms(t1, t2) / n, _ms(t2, t3) / n + _ms(t3, time.perf_counter()))
            results.append(ClassificationResult(categories, timings, row, self._post.multi_label))
        return results

    def classify_regions(self, frame: ImageInput, regions: Any, *, crop: str | CropPolicy | None = None,
                         max_results: int | None = None, score_threshold: float | None = None,
                         allowlist: Iterable[str] | None = None, denylist: Iterable[str] | None = None,
                         color: str = "bgr") -> list[RegionResult]:
        """Classify each region of ``frame`` (the boxes a detector found), the crops as one batch.

        ``frame``: the whole frame (BGR ndarray by default, a path or bytes); ``regions``: pixel boxes
        ``(x_min, y_min, x_max, y_max)``, :class:`Region` objects, DeepStack predictions or answer, dicts with
        ``box`` (:func:`~edgecls.runtime.regions.regions_from`); ``crop``: the crop policy (``"square:1.2"``,
        ``"frigate"``, a :class:`CropPolicy`), default the card's, else ``square``. Returns one
        :class:`RegionResult` per region, in order (a skipped one with no categories says why).

        Raises:
            RegionError: a region that is not a box (naming its index), an unreadable policy.
            ImageError, OptionError, InferenceError: as :meth:`classify`.
        """
        from edgecls.runtime.region_batch import classify_regions

        options = self._options(max_results, score_threshold, allowlist, denylist)
        policy = CropPolicy.parse(crop if crop is not None else self._card.input.crop)
        return classify_regions(self, frame, regions, policy, options, color)

    def scores(self, image: ImageInput, *, color: str = "bgr") -> np.ndarray:
        """All class scores (float32, one per label) for ``image``. Raises as :meth:`classify`."""
        return self.scores_batch([image], color=color)[0]

    def scores_batch(self, images: Sequence[ImageInput], *, color: str = "bgr") -> np.ndarray:
        """All class scores for each image, shape (N, classes). Raises as :meth:`classify`."""
        return self.scores_of_inputs(self._batch(images, color))

    def scores_of_inputs(self, inputs: np.ndarray) -> np.ndarray:
        """All class scores, shape (N, classes), for model inputs made by :meth:`preprocess` and stacked
        (N first): decode and check images one by one, then run the good ones in one call. The monitor (if
        any) reads the inputs first, while they are in the cache.

        Raises:
            InferenceError: the engine failed, or returned another number of scores than the labels.
        """
        read = self._monitor.read(inputs) if self._monitor is not None else None
        with engine_errors(InferenceError, f"{self._path}: inference failed"):
            scores = self._post.scores(self._checked(self._backend.run(inputs), inputs.shape[0]))
        if read is not None:
            self._monitor.add(read, scores)
        return scores

    def _checked(self, raw: np.ndarray, n: int) -> np.ndarray:
        """``raw`` when it holds one score per label for each of ``n`` images; raises InferenceError."""
        if raw.size != n * len(self._card.labels):
            raise InferenceError(f"{self._path}: the model returned {raw.shape} scores for {n} image(s); "
                                 f"its card and tensors say {len(self._card.labels)} per image")
        return raw

    def _batch(self, images: Sequence[ImageInput], color: str) -> np.ndarray:
        if len(images) == 1:
            return self.preprocess(images[0], color=color)[None]  # a view: no copy for one image
        return np.stack([self.preprocess(image, color=color) for image in images])

    def categorize(self, scores: np.ndarray, options: ClassifyOptions | None = None
                   ) -> tuple[Category, ...] | list[tuple[Category, ...]]:
        """Ordered categories for a score vector (e.g. scores averaged over frames): a tuple of
        :class:`Category`; for a matrix of scores (one row per image), a list of them, one per row."""
        scores = np.asarray(scores, dtype=np.float32)
        if scores.ndim == 2:
            return self._post.categories_rows(scores, options or self._defaults)
        return self._post.categories(scores, options or self._defaults)

    def explain(self, image: ImageInput, *, label: str | None = None, method: str = "occlusion",
                color: str = "bgr", **settings: Any) -> Explanation:
        """A heat map of what in ``image`` made this model answer ``label`` (default: its top-1), from
        the model alone: ``method="occlusion"`` (a blurred square sliding over the image) or ``"rise"``
        (random masks); ``settings`` tune them (see :func:`edgecls.runtime.explain.explain`).

        Raises:
            ImageError: unreadable image.
            OptionError: unknown method or label, settings out of range.
            InferenceError: the engine failed.
        """
        from edgecls.runtime.explain import explain

        return explain(self, image, label=label, method=method, color=color, **settings)

    def stream(self, source: Any, options: StreamOptions | None = None, *,
               capture: CaptureOptions | HardExamples | None = None, max_results: int | None = None,
               score_threshold: float | None = None, **settings: Any) -> Stream:
        """Classify a video file, camera, URL, GStreamer pipeline, image folder or iterable of frames.

        How is a :class:`~edgecls.runtime.stream.StreamOptions` (its fields say what each does), given whole
        or as its fields: ``clf.stream(src, mode="live", smooth=5)``. ``capture=CaptureOptions(dir,
        below_score=...)`` saves the frames the model was unsure about (see :mod:`edgecls.runtime.capture`).
        Use it as a context manager.

        Raises:
            SourceError: the source cannot be opened (within ``open_timeout_s`` for network sources).
            OptionError: bad or unknown stream settings, both ``options`` and settings, bad capture or
                classify options.
            OSError: the capture folder cannot be created.
        """
        from edgecls.runtime.stream import Stream, StreamOptions

        if options is not None and settings:
            raise OptionError(f"give the stream's options as a StreamOptions or as keywords, not both "
                              f"(got {', '.join(sorted(settings))} too)")
        classify = self._options(max_results, score_threshold, None, None)
        return Stream(self, source, options or options_from(StreamOptions, settings, what="stream"), classify,
                      capture)

    def live(self, result_callback: ResultCallback, *, smooth: int | None = None, events: bool = False,
             max_results: int | None = None, score_threshold: float | None = None, color: str = "bgr",
             capture: CaptureOptions | HardExamples | None = None, crop: str | None = None) -> LiveSession:
        """A session for frames your own loop captures: ``session.classify_async(frame, timestamp_ms)``
        returns at once and ``result_callback(FrameResult)`` is called on a worker thread, newest frame
        first, stale ones dropped and counted (MediaPipe's LIVE_STREAM mode); ``classify_async(frame, ts,
        regions=boxes)`` classifies those boxes of it (cut by ``crop``). ``capture`` as in :meth:`stream`.
        Use it as a context manager.

        Raises:
            OptionError: bad smooth, color, capture or classify options.
            StreamError: ``result_callback`` is not callable.
            OSError: the capture folder cannot be created.
        """
        from edgecls.runtime.live import LiveSession

        options = self._options(max_results, score_threshold, None, None)
        return LiveSession(self, result_callback, options=options, smooth=smooth, events=events, color=color,
                           capture=capture, crop=crop)

    # -- lifetime -------------------------------------------------------------------
    def close(self) -> None:
        """Release the engine. Calling it twice is harmless."""
        self._backend.close()

    def __enter__(self) -> Classifier:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        b = self._backend
        return f"Classifier({str(self._path)!r}, backend={b.name!r}, device={b.device!r}, classes={len(self.labels)})"
