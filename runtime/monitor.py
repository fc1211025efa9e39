"""The drift monitor: every ``window`` classified images, how far each signal has moved from the model's
reference profile (:mod:`edgecls.runtime.profile`), as a state per signal and a plain reason.

For each signal a window fills a histogram over the reference's bins (O(bins) memory: never a frame or a
score is kept) and, when full, is compared with the reference by PSI, the population stability index
``Σ (w − r) · ln(w / r)`` over the bins' shares (each share smoothed by half an image, so an empty bin is
not infinite). The class mix is compared the same way, and also by a chi-squared test of the two counts
(its p-value is in the reason). PSI under 0.1 reads as no change, 0.1–0.25 moderate, over 0.25 major (the
convention of evidently and NannyML): the states ``ok``, ``warn``, ``alert``, with thresholds per signal.
Hysteresis: a state rises as soon as a window crosses its threshold, and falls only when a window is under
``clear`` × the threshold (0.8 by default), so a signal near a threshold does not flicker.

A PSI between a window of ``w`` images and a reference of ``r`` over ``b`` bins reads about
``(b − 1)(1/w + 1/r)`` when nothing changed (0.04 for 500 images against 360 over 10 bins): windows much
smaller than a few hundred images, or references of a few dozen, make warnings of noise.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgecls.runtime.card import InputSpec
from edgecls.runtime.drift_stats import chi2_pvalue, psi
from edgecls.runtime.errors import OptionError
from edgecls.runtime.profile import (
    CLASSES,
    INPUT_SIGNALS,
    InputSignals,
    Profile,
    classes_of,
    output_row,
    output_signals,
)

__all__ = ["MonitorOptions", "Monitor", "DriftReport", "SignalDrift", "STATES", "psi", "chi2_pvalue"]

STATES = ("ok", "warn", "alert")
_WORDS = {  # signal: (what it is, what a fall means, what a rise means)
    "brightness": ("brightness", "the scene is darker", "the scene is brighter"),
    "contrast": ("contrast", "the picture is flatter (fog, glare, a dirty lens?)", "the picture is harsher"),
    "sharpness": ("sharpness", "the picture is blurrier (focus, motion, a wet lens?)",
                  "the picture is sharper or noisier (night gain, compression?)"),
    "colour": ("colour balance (red − blue)", "the light is bluer", "the light is warmer"),
    "score": ("the top score", "the model is less sure", "the model is surer"),
    "margin": ("the top-two margin", "the model hesitates between classes more", "the model hesitates less"),
    "entropy": ("the scores' entropy", "the scores are more peaked", "the scores are spread wider: the model is unsure"),
}


@dataclass(frozen=True)
class MonitorOptions:
    """How the drift monitor reads a model's frames.

    Attributes:
        window: images per comparison with the reference (see the module's note on its size).
        warn, alert: PSI thresholds of the ``warn`` and ``alert`` states (0.1 and 0.25 by default).
        thresholds: per-signal ``(warn, alert)`` overriding those (``{"sharpness": (0.2, 0.5)}``).
        clear: a state falls only when a window's PSI is under ``clear`` × its threshold.
        every: read one image in this many (1: all; 4 by default). A camera's consecutive frames are near
            copies, so reading one in 4 loses little and costs a quarter (measured on MobileNetV2-224 int8:
            +0.5 % a frame, against +6.5 % reading all); a window is ``window`` images read.
        signals: the signals watched (default: all the reference has, and the class mix ``classes``).
        on_change: called with the :class:`DriftReport` of each window where a state changed (on the
            classifying thread: keep it short).
        profile: the reference, when not the card's (``Profile`` or its dict, e.g. from ``edgecls profile``).

    Raises:
        OptionError: a window under 20, thresholds not 0 < warn ≤ alert, clear outside (0, 1], an unknown
            signal.
    """

    window: int = 500
    warn: float = 0.1
    alert: float = 0.25
    thresholds: Mapping[str, tuple[float, float]] = field(default_factory=dict)
    clear: float = 0.8
    every: int = 4
    signals: tuple[str, ...] | None = None
    on_change: Callable[[DriftReport], Any] | None = field(default=None, compare=False, repr=False)
    profile: Profile | Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 20:
            raise OptionError(f"monitor window must be at least 20 images, got {self.window!r}", options=("window",))
        for name, (warn, alert) in {"*": (self.warn, self.alert), **dict(self.thresholds)}.items():
            if not 0 < warn <= alert:
                raise OptionError(f"monitor thresholds need 0 < warn <= alert, got {warn}, {alert} for {name}")
        if isinstance(self.every, bool) or not isinstance(self.every, int) or self.every < 1:
            raise OptionError(f"monitor every must be a positive integer, got {self.every!r}", options=("every",))
        if not 0 < self.clear <= 1:
            raise OptionError(f"monitor clear must be in (0, 1], got {self.clear}")
        known = (*INPUT_SIGNALS, "score", "margin", "entropy", CLASSES)
        unknown = sorted((set(self.signals or ()) | set(self.thresholds)) - set(known))
        if unknown:
            raise OptionError(f"unknown drift signal(s) {', '.join(unknown)}; choose from {', '.join(known)}")

    def limits(self, signal: str) -> tuple[float, float]:
        return tuple(self.thresholds.get(signal, (self.warn, self.alert)))  # type: ignore[return-value]


@dataclass(frozen=True)
class SignalDrift:
    """One signal in one window: its PSI against the reference, its state, the window's mean against the
    reference's, and why (empty when ``ok``)."""

    signal: str
    psi: float
    state: str
    mean: float
    reference_mean: float
    reason: str = ""
    pvalue: float | None = None
    """The class mix only: the chi-squared test's p-value."""
    shares: tuple[float, ...] = ()
    """The window's share of images per bin of the reference (per class for the class mix)."""


@dataclass(frozen=True)
class DriftReport:
    """A finished window: its index (0 first), how many images it held, every signal, and which changed
    state (their names)."""

    window: int
    images: int
    signals: tuple[SignalDrift, ...]
    changed: tuple[str, ...] = ()

    @property
    def state(self) -> str:
        """The worst state of any signal."""
        return max((s.state for s in self.signals), key=STATES.index, default="ok")

    @property
    def reasons(self) -> list[str]:
        """Why, for each signal not ``ok``, the one that moved most (highest PSI) first."""
        return [s.reason for s in sorted(self.signals, key=lambda s: -s.psi) if s.state != "ok"]

    def moved(self, state: str = "alert") -> list[str]:
        """The signals in ``state`` (default ``alert``), the one that moved most first."""
        return [s.signal for s in sorted(self.signals, key=lambda s: -s.psi) if s.state == state]

    def to_dict(self) -> dict[str, Any]:
        return {"window": self.window, "images": self.images, "state": self.state, "changed": list(self.changed),
                "signals": {s.signal: {"psi": round(s.psi, 4), "state": s.state, "mean": round(s.mean, 4),
                                       "reference_mean": round(s.reference_mean, 4), "reason": s.reason,
                                       "shares": [round(x, 4) for x in s.shares],
                                       **({"pvalue": s.pvalue} if s.pvalue is not None else {})}
                            for s in self.signals}}


class Monitor:
    """Reads every classified batch (inputs and scores) of one model, thread-safely; see the module's docstring.

    One monitor may serve several classifiers of the same file (a service's pool): pass it as ``monitor=``.
    """

    def __init__(self, profile: Profile, spec: InputSpec, labels: Iterable[str], options: MonitorOptions | None = None,
                 *, multi_label: bool = False, thresholds: np.ndarray | None = None) -> None:
        self.options = options or MonitorOptions()
        self.profile, self.labels = profile, tuple(labels)
        watched = self.options.signals or (*profile.signals, CLASSES)
        self.signals = tuple(s for s in watched if s in profile.signals)
        self.watch_classes = CLASSES in watched and len(profile.classes) == len(self.labels)
        self._inputs = InputSignals(spec) if set(self.signals) & set(INPUT_SIGNALS) else None
        self._multi, self._thresholds = multi_label, thresholds
        self._lock = threading.Lock()
        self._states = dict.fromkeys((*self.signals, *((CLASSES,) if self.watch_classes else ())), "ok")
        self._phase = 0
        self._reset()
        self.windows = 0
        self.last: DriftReport | None = None

    def _reset(self) -> None:
        self._counts = {s: np.zeros(len(self.profile.signals[s].shares), np.int64) for s in self.signals}
        self._sums = dict.fromkeys(self.signals, 0.0)
        self._classes = np.zeros(len(self.labels), np.int64)
        self._seen = 0

    @property
    def states(self) -> dict[str, str]:
        """Each signal's current state."""
        with self._lock:
            return dict(self._states)

    def observe(self, inputs: np.ndarray, scores: np.ndarray) -> DriftReport | None:
        """Add a batch (model inputs N first, their scores); the report of each window it completes (the
        last one), None when none. ``on_change`` is called for a window whose states changed."""
        return self.add(self.read(inputs), scores)

    def read(self, inputs: np.ndarray) -> dict[str, Any]:
        """The input signals of a batch of model inputs (of the images ``every`` selects): read them while
        the inputs are still in the CPU's cache (before the engine runs), then :meth:`add` them with the
        batch's scores."""
        every = self.options.every
        with self._lock:
            first, self._phase = (-self._phase) % every, (self._phase + len(inputs)) % every
        rows = range(first, len(inputs), every)
        read: dict[str, Any] = {"": rows}
        if self._inputs is None or not rows:
            return read
        if len(rows) == 1:  # a frame at a time (a stream, a request): plain numbers, no array per signal
            read.update((name, (v,)) for name, v in zip(INPUT_SIGNALS, self._inputs.one(inputs[rows[0]]), strict=True))
        else:
            read.update(self._inputs(inputs[first::every]))
        return read

    @property
    def digest(self) -> str:
        """The reference's fingerprint (sha256 of its JSON): tallies merge only between monitors of one reference."""
        data = json.dumps(self.profile.to_dict(), sort_keys=True).encode()
        return hashlib.sha256(data).hexdigest()[:16]

    def take(self) -> dict[str, Any]:
        """The images added since the last window closed, as a JSON-able tally (counts per bin, sums and
        class counts, with the reference's :attr:`digest`), and start the window again: one worker's share
        of a run, which :meth:`absorb` merges in another process."""
        with self._lock:
            tally = {"profile": self.digest, "images": self._seen,
                     "counts": {name: c.tolist() for name, c in self._counts.items()},
                     "sums": dict(self._sums), "classes": self._classes.tolist()}
            self._reset()
        return tally

    def absorb(self, tally: Mapping[str, Any]) -> bool:
        """Add a :meth:`take` tally of a monitor of the same reference and signals to the window (which
        closes only by :meth:`close`). False, adding nothing, for a tally of another reference or one
        that is not a tally (a file's metadata is not trusted)."""
        try:
            counts = {name: np.asarray(tally["counts"][name], np.int64) for name in self.signals}
            classes = np.asarray(tally["classes"], np.int64)
            sums = {name: float(tally["sums"][name]) for name in self.signals}
            images = int(tally["images"])
            same = (tally["profile"] == self.digest and set(tally["counts"]) == set(self.signals)
                    and classes.shape == self._classes.shape and images >= 0
                    and all(c.shape == self._counts[n].shape and (c >= 0).all() for n, c in counts.items())
                    and (classes >= 0).all() and all(map(math.isfinite, sums.values())))
        except (KeyError, TypeError, ValueError, OverflowError, RecursionError):
            return False
        if not same:
            return False
        with self._lock:
            for name in self.signals:
                self._counts[name] += counts[name]
                self._sums[name] += sums[name]
            self._classes += classes
            self._seen += images
        return True

    def close(self) -> DriftReport | None:
        """Close the window now, however few images it holds: its report (``on_change`` is not called),
        None when it holds none."""
        with self._lock:
            return self._close() if self._seen else None

    def add(self, read: dict[str, Any], scores: np.ndarray) -> DriftReport | None:
        """Add the batch whose inputs :meth:`read` read, with its scores. Returns as :meth:`observe`."""
        rows = read[""]
        if not rows:
            return None
        values = {name: v for name, v in read.items() if name}
        scores = scores[rows.start::rows.step]
        if len(scores) == 1:
            values.update({name: (v,) for name, v in output_row(scores[0], self._multi).items()})
        else:
            values.update(output_signals(scores, self._multi))
        classes = classes_of(scores, self._multi, self._thresholds) if self.watch_classes else None
        with self._lock:
            for name in self.signals:
                ref, these = self.profile.signals[name], values[name]
                if len(these) == 1:
                    self._counts[name][ref.bin_of(these[0])] += 1
                else:
                    self._counts[name] += ref.counts(these)
                self._sums[name] += float(sum(these))
            if classes is not None:
                self._classes += classes
            self._seen += len(scores)
            report = self._close() if self._seen >= self.options.window else None
        if report is not None and report.changed and self.options.on_change is not None:
            self.options.on_change(report)
        return report

    def _close(self) -> DriftReport:
        drifts = [self._signal(name) for name in self.signals]
        if self.watch_classes:
            drifts.append(self._class_mix())
        changed = []
        for drift in drifts:
            if self._states[drift.signal] != drift.state:
                changed.append(drift.signal)
                self._states[drift.signal] = drift.state
        report = DriftReport(self.windows, self._seen, tuple(drifts), tuple(changed))
        self.windows += 1
        self.last = report
        self._reset()
        return report

    def _state(self, signal: str, value: float) -> str:
        warn, alert = self.options.limits(signal)
        now = "alert" if value >= alert else "warn" if value >= warn else "ok"
        before = self._states[signal]
        if STATES.index(now) < STATES.index(before):  # falling: only once clearly under the threshold
            floor = alert if before == "alert" else warn
            if value >= floor * self.options.clear:
                return before
        return now

    def _signal(self, name: str) -> SignalDrift:
        ref = self.profile.signals[name]
        value = psi(np.asarray(ref.shares), self._counts[name], self.profile.images)
        mean = self._sums[name] / max(1, self._seen)
        state = self._state(name, value)
        reason = "" if state == "ok" else _reason(name, value, mean, ref.mean, ref.low, ref.high)
        counts = self._counts[name]
        return SignalDrift(name, value, state, mean, ref.mean, reason,
                           shares=tuple(float(c) for c in counts / max(1, counts.sum())))

    def _class_mix(self) -> SignalDrift:
        ref = np.asarray(self.profile.classes, float)
        counts = self._classes
        value = psi(ref, counts, self.profile.images)
        expected = ref * self.profile.images
        table = np.stack([expected, counts.astype(float)])
        keep = table.sum(axis=0) > 0
        table = table[:, keep]
        totals = table.sum(axis=1, keepdims=True) * table.sum(axis=0, keepdims=True) / table.sum()
        statistic = float(((table - totals) ** 2 / np.maximum(totals, 1e-12)).sum())
        pvalue = chi2_pvalue(statistic, int(keep.sum()) - 1)
        shares = counts / max(1, counts.sum())
        state = self._state(CLASSES, value)
        reason = ""
        if state != "ok":
            moved = int(np.argmax(np.abs(shares - ref)))
            reason = (f"the class mix changed (PSI {value:.2f}, chi-squared p {pvalue:.2g}): {self.labels[moved]!r} "
                      f"{ref[moved]:.0%} → {shares[moved]:.0%} of the answers")
        top = float(shares.max()) if len(shares) else 0.0
        return SignalDrift(CLASSES, value, state, top, float(ref.max()) if len(ref) else 0.0, reason, pvalue,
                           tuple(float(x) for x in shares))


def _reason(name: str, value: float, mean: float, ref_mean: float, low: float, high: float) -> str:
    what, fell, rose = _WORDS[name]
    direction, meaning = ("fell", fell) if mean < ref_mean else ("rose", rose)
    text = f"{what} {direction} from {ref_mean:.2f} to {mean:.2f} (PSI {value:.2f}): {meaning}"
    if mean < low or mean > high:
        text += f"; {'lower' if mean < low else 'higher'} than any reference image's ({low:.2f}–{high:.2f})"
    return text


def monitor_for(card: Any, monitor: MonitorOptions | Monitor | bool | None) -> Monitor | None:
    """The monitor a classifier of ``card`` runs: ``monitor`` itself (one shared by several classifiers), a
    new one for ``MonitorOptions`` (or ``True``: the defaults), None for None or False.

    Raises:
        OptionError: the options name no profile and the card has none (``edgecls profile`` makes one).
        CardError: the profile is not one this edgecls reads.
    """
    if monitor is None or monitor is False or isinstance(monitor, Monitor):
        return monitor or None
    options = MonitorOptions() if monitor is True else monitor
    if not isinstance(options, MonitorOptions):
        raise OptionError(f"monitor takes MonitorOptions, a Monitor or True, got {type(monitor).__name__}",
                          options=("monitor",))
    data = options.profile if options.profile is not None else card.profile
    if data is None:
        raise OptionError("the model's card has no reference profile for the drift monitor: make one with "
                          "edgecls profile MODEL IMAGES (or export it again), or give MonitorOptions(profile=...)",
                          options=("monitor",))
    profile = data if isinstance(data, Profile) else Profile.from_dict(data)
    thresholds = card.output.thresholds
    return Monitor(profile, card.input, card.labels, options, multi_label=card.output.multi_label,
                   thresholds=None if thresholds is None else np.asarray(thresholds, np.float64))
