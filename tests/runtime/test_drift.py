"""The drift monitor: a reference profile in every export, and alarms when a camera's frames move away from
it (real images: held-out digits, scikit-image's photos and faces), in O(bins) memory."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.monitor import MonitorOptions, chi2_pvalue, psi
from edgecls.runtime.profile import Profile

WINDOW = 500


def _stream(clf, frames, window=WINDOW):
    """Classify ``frames`` (RGB, one at a time as a camera would) with a fresh monitor; each window's report."""
    reports = []
    options = MonitorOptions(window=window, every=1)
    with Classifier.from_path(clf.path, monitor=options) as watched:
        for start in range(0, len(frames), 50):  # 50 at a time: the same windows, a tenth of the calls
            watched.scores_batch(list(frames[start:start + 50]), color="rgb")
            if watched.monitor.last is not None and (not reports or reports[-1] is not watched.monitor.last):
                reports.append(watched.monitor.last)
    return reports


@pytest.fixture(scope="module")
def seed(int8_model):
    with Classifier.from_path(int8_model) as clf:
        yield clf


@pytest.fixture(scope="module")
def held_out(digits):
    images, labels = digits
    return images[1400:], labels[1400:]


def test_every_export_carries_a_small_reference_profile_that_info_shows(seed_export, capsys):
    from edgecls.cli import main

    for f in seed_export.files:
        with Classifier.from_path(f.path) as clf:
            profile = Profile.from_dict(clf.card.profile)
            assert profile.images == 397 and profile.source == "validation images"
            assert set(profile.signals) == {"brightness", "contrast", "sharpness", "colour", "score", "margin",
                                            "entropy"} and len(profile.classes) == 10
            assert len(json.dumps(clf.card.profile)) < 4096
    assert main(["info", str(seed_export.files[0].path)]) == 0
    assert "drift reference: 397 validation images" in capsys.readouterr().out


def test_a_clean_stream_of_20000_held_out_digits_raises_no_alert(seed, held_out):
    images, _ = held_out
    order = np.random.default_rng(0).integers(0, len(images), 20_000)
    reports = _stream(seed, images[order])
    assert len(reports) == 40
    assert [r.window for r in reports if r.state == "alert"] == []
    assert sum(r.state == "ok" for r in reports) >= 36  # a warning of noise now and then at most


def _shifted(images, kind, rng):
    if kind == "dark":
        return (images * 0.3).astype(np.uint8)
    if kind == "low contrast":
        return (128 + (images.astype(np.float32) - 128) * 0.3).astype(np.uint8)
    if kind == "blur":
        return np.stack([cv2.GaussianBlur(x, (0, 0), 2) for x in images])
    if kind == "noise":
        return np.clip(images + rng.normal(0, 25, images.shape), 0, 255).astype(np.uint8)
    if kind == "rotated":
        return np.ascontiguousarray(np.rot90(images, axes=(1, 2)))
    if kind == "faces":
        from skimage import data

        faces = (data.lfw_subset()[:100] * 255).astype(np.uint8)
        return np.stack([cv2.cvtColor(cv2.resize(faces[i % 100], (32, 32)), cv2.COLOR_GRAY2RGB)
                         for i in range(len(images))])
    from edgecls import realdata

    photos = [realdata.photo_frame(name, 320, 240) for name in realdata.PHOTOS]
    return np.stack([cv2.resize(photos[i % len(photos)][(i * 7) % 200:][:40, (i * 11) % 280:][:, :40],
                                (32, 32))[:, :, ::-1] for i in range(len(images))])


@pytest.mark.parametrize("kind, signals", [
    ("dark", {"brightness"}), ("low contrast", {"contrast"}), ("blur", {"sharpness"}), ("noise", {"sharpness"}),
    ("rotated", {"classes", "score", "margin", "entropy"}), ("faces", None), ("photos", None)])
def test_each_shift_reaches_alert_within_two_windows_naming_what_moved(seed, held_out, kind, signals):
    """750 clean frames, then the shift: the window it starts in or the next alerts, and the reason names a
    signal that moved that way (any signal for out-of-domain images: they move several)."""
    rng = np.random.default_rng(1)
    images, _ = held_out
    clean = images[rng.integers(0, len(images), 750)]
    shifted = _shifted(images[rng.integers(0, len(images), 1250)], kind, rng)
    reports = _stream(seed, np.concatenate([clean, shifted]))
    assert reports[0].state != "alert"  # all clean
    first = next(r for r in reports if r.state == "alert")
    assert first.window in (1, 2), [r.state for r in reports]
    moved = set(first.moved("alert"))
    assert moved & (signals or moved), (kind, moved, first.reasons)
    named = signals & moved if signals else moved
    assert any(any(_words(s) in reason for s in named) for reason in first.reasons), first.reasons


def _words(signal: str) -> str:
    return {"classes": "class mix", "score": "top score", "margin": "margin", "entropy": "entropy",
            "colour": "colour"}.get(signal, signal)


def test_a_gradual_darkening_is_reported_before_accuracy_falls_ten_points(seed, held_out):
    """Brightness falling from ×1 to ×0.05 over 5,000 frames (after 1,000 clean ones): brightness leaves
    ``ok`` in an earlier window than the one where accuracy is 10 points under the clean windows'."""
    images, labels = held_out
    rng = np.random.default_rng(2)
    order = rng.integers(0, len(images), 6000)
    gain = np.concatenate([np.ones(1000), np.linspace(1.0, 0.05, 5000)])
    frames = (images[order] * gain[:, None, None, None]).astype(np.uint8)
    reports = _stream(seed, frames)
    answers = seed.scores_batch(list(frames), color="rgb").argmax(axis=1)
    accuracy = [(answers[w * WINDOW:(w + 1) * WINDOW] == labels[order][w * WINDOW:(w + 1) * WINDOW]).mean()
                for w in range(len(reports))]
    clean = np.mean(accuracy[:2])
    dropped = next(w for w, a in enumerate(accuracy) if a < clean - 0.10)  # it does drop
    reported = next(r.window for r in reports if {s.signal: s.state for s in r.signals}["brightness"] != "ok")
    assert reported < dropped, (reported, dropped, [round(a, 3) for a in accuracy])
    assert "brightness fell" in next(r for r in reports if r.window == reported).reasons[0] or any(
        "brightness fell" in reason for reason in reports[reported].reasons)


def test_psi_and_the_chi_squared_p_value_are_the_textbook_ones():
    scipy_stats = pytest.importorskip("scipy.stats")
    for statistic, dof in ((0.5, 1), (3.84, 1), (12.0, 9), (40.0, 9), (300.0, 9), (5.0, 30)):
        assert chi2_pvalue(statistic, dof) == pytest.approx(scipy_stats.chi2.sf(statistic, dof), rel=1e-6, abs=1e-12)
    shares = np.full(10, 0.1)
    assert psi(shares, np.full(10, 50), 10_000) == pytest.approx(0.0, abs=1e-9)
    moved = np.array([100, 100, 100, 100, 100, 0, 0, 0, 0, 0])
    expected = sum((a - 0.1) * math.log(a / 0.1) for a in (100.5 / 505,) * 5 + (0.5 / 505,) * 5)
    assert psi(shares, moved, 10**9) == pytest.approx(expected, rel=1e-3)


def _brightness_windows(path, images, gains, options):
    rng = np.random.default_rng(3)  # the same frames on every pass
    states, psis = [], []
    with Classifier.from_path(path, monitor=options) as clf:
        for gain in gains:
            frames = (images[rng.integers(0, len(images), 400)] * gain).astype(np.uint8)
            clf.scores_batch(list(frames), color="rgb")
            states.append(clf.monitor.last.signals[0].state)
            psis.append(clf.monitor.last.signals[0].psi)
    return states, psis


def test_a_state_does_not_flicker_near_its_threshold(seed, held_out):
    """Windows alternating either side of the alert threshold (darkened ×0.86, ×0.88, ...): without hysteresis
    (``clear=1``) the state flickers alert/warn every window; with it, it rises once and holds until the
    scene is clean again."""
    images, _ = held_out
    gains = [1.0, 0.86, 0.88, 0.86, 0.88, 1.0, 1.0]
    _, psis = _brightness_windows(seed.path, images, gains, MonitorOptions(window=400, every=1, signals=("brightness",)))
    darker, lighter = min(psis[1], psis[3]), max(psis[2], psis[4])
    assert darker > lighter > 0.25 > psis[0], psis  # the frames do straddle a threshold between them
    threshold = (darker + lighter) / 2
    limits = {"brightness": (0.1, threshold)}
    flicker, _ = _brightness_windows(seed.path, images, gains, MonitorOptions(
        window=400, every=1, signals=("brightness",), thresholds=limits, clear=1.0))
    held, _ = _brightness_windows(seed.path, images, gains, MonitorOptions(
        window=400, every=1, signals=("brightness",), thresholds=limits,
        clear=min(psis[2], psis[4]) / threshold * 0.9))
    assert flicker == ["ok", "alert", "warn", "alert", "warn", "ok", "ok"], (flicker, psis)
    assert held == ["ok", "alert", "alert", "alert", "alert", "ok", "ok"], (held, psis)


LONG = """
import json, sys
import numpy as np
from edgecls.runtime import Classifier
from edgecls.runtime.monitor import MonitorOptions

def rss_mb():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024

images = np.random.default_rng(0).integers(0, 255, (100, 32, 32, 3), dtype=np.uint8)
checkpoints = []
with Classifier.from_path(sys.argv[1], num_threads=1, monitor=MonitorOptions(window=500)) as clf:  # one in 4
    inputs = np.stack([clf.preprocess(x) for x in images])
    for n in range(2000):  # 200,000 frames, 100 an engine call
        clf.scores_of_inputs(inputs)
        if n % 400 == 399:
            checkpoints.append(rss_mb())
    windows = clf.monitor.windows
print(json.dumps({"rss_mb": checkpoints, "windows": windows}))
"""


def test_the_monitor_costs_constant_memory_over_200000_frames(int8_model):
    proc = subprocess.run([sys.executable, "-c", LONG, str(int8_model)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss = out["rss_mb"]
    assert out["windows"] == 100 and len(rss) == 5  # 200,000 frames, one in 4 read, 500 a window
    assert rss[-1] - rss[0] < 1.0, rss  # 160,000 frames after the first 40,000: < 7 bytes a frame


def test_profile_and_drift_commands(int8_model, held_out, tmp_path, capsys):
    from edgecls.cli import main

    images, _ = held_out
    dark = tmp_path / "dark"
    dark.mkdir()
    for i, image in enumerate(images[:200]):
        cv2.imwrite(str(dark / f"{i:03d}.png"), (image[:, :, ::-1] * 0.3).astype(np.uint8))
    assert main(["drift", str(int8_model), str(dark), "--json", "--plot", str(tmp_path / "drift.png")]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "alert" and report["signals"]["brightness"]["state"] == "alert"
    assert cv2.imread(str(tmp_path / "drift.png")) is not None
    side = tmp_path / "dark-profile.json"
    assert main(["profile", str(int8_model), str(dark), "--out", str(side)]) == 0
    capsys.readouterr()
    assert main(["drift", str(int8_model), str(dark), "--profile", str(side), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"] == "ok"  # against its own profile: nothing moved
    assert main(["drift", str(int8_model), str(dark / "000.png")]) == 2  # one image is no window


def test_every_reads_one_image_in_n_the_same_ones_however_they_are_batched(seed, held_out):
    """``every=4``: a window is 500 images read, one frame in four; frames one at a time or 50 at a time
    give the same windows (the same frames read)."""
    images, _ = held_out
    frames = images[np.random.default_rng(4).integers(0, len(images), 4000)]
    reports = {}
    for batch in (1, 50):
        with Classifier.from_path(seed.path, monitor=MonitorOptions(window=500, every=4)) as clf:
            for start in range(0, len(frames), batch):
                clf.scores_batch(list(frames[start:start + batch]), color="rgb")
            reports[batch] = (clf.monitor.windows, clf.monitor.last)
    (windows1, last1), (windows50, last50) = reports[1], reports[50]
    assert windows1 == windows50 == 2 and last1.images == last50.images == 500
    inputs = ("brightness", "contrast", "sharpness", "colour")  # the engine's scores may move by a step with the batch
    assert [(s.signal, s.shares) for s in last1.signals if s.signal in inputs] == [
        (s.signal, s.shares) for s in last50.signals if s.signal in inputs]


def test_capture_on_drift_keeps_a_bounded_sample_of_the_alerting_window(int8_model, held_out, tmp_path, capsys):
    """``stream --capture-on-drift DIR``: 200 clean frames then 400 darkened (windows of 200, every frame
    read): the two alerting windows each leave at most 16 frames in DIR, all darkened ones, in the capture
    layout with the drifting signals as their reasons; the clean window leaves none."""
    from edgecls.cli import main

    images, _ = held_out
    chosen = images[np.random.default_rng(5).integers(0, len(images), 600)]
    camera = tmp_path / "camera"
    camera.mkdir()
    for i, image in enumerate(chosen):
        cv2.imwrite(str(camera / f"{i:04d}.png"), (image[:, :, ::-1] * (1.0 if i < 200 else 0.3)).astype(np.uint8))
    kept = tmp_path / "drifted"
    assert main(["stream", str(int8_model), str(camera), "--drift-window", "200", "--drift-every", "1",
                 "--capture-on-drift", str(kept), "--json"]) == 0
    capsys.readouterr()
    sidecars = [json.loads(p.read_text()) for p in sorted(kept.glob("*/*.json"))]
    assert 16 < len(sidecars) <= 32 and len(list(kept.glob("*/*.jpg"))) == len(sidecars)
    assert all(s["frame"] >= 200 for s in sidecars), sorted(s["frame"] for s in sidecars)
    assert all("drift: brightness" in s["reasons"] for s in sidecars)
    assert len({s["frame"] for s in sidecars}) == len(sidecars)


def test_a_live_session_feeds_the_classifiers_monitor(int8_model, held_out):
    """``Classifier.live`` (MediaPipe's LIVE_STREAM mode) runs through the same monitor: 180 clean frames,
    then 180 darkened ones, each pushed once the previous result arrived (none dropped): the second
    window.s alert is reported to ``on_change``, naming brightness; the first raised none."""
    import threading

    images, _ = held_out
    changes, arrived = [], threading.Event()
    options = MonitorOptions(window=180, every=1, on_change=changes.append)
    with Classifier.from_path(int8_model, monitor=options) as clf, \
            clf.live(lambda result: arrived.set(), color="rgb") as session:
        for i, image in enumerate(images[:360]):
            arrived.clear()
            session.classify_async((image * (1.0 if i < 180 else 0.3)).astype(np.uint8), i + 1)
            assert arrived.wait(60), f"no result for frame {i}"
        assert clf.monitor.windows == 2
    assert changes[-1].window == 1 and "brightness" in changes[-1].moved()
    assert all(r.state != "alert" for r in changes if r.window == 0)
