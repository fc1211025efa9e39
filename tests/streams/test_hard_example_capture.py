"""Hard-example capture: exactly the frames under the threshold, each with its sidecar, within the caps,
never blocking the stream (a disk slower than the stream drops and counts)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls.runtime import CaptureOptions, Classifier, HardExamples, OptionError
from edgecls.runtime.capture import FolderStore, Origin
from edgecls.runtime.datasets import list_images

BLENDED = range(3, 240, 8)
"""Frames of the video made ambiguous: half one digit, half another."""


@pytest.fixture(scope="module")
def ambiguous_video(tmp_path_factory, digits):
    """An MJPG video of 240 held-out digits (64×64), every 8th frame (from the 4th) a 50/50 blend of two
    different digits."""
    images, labels = digits
    held, held_labels = images[1400:], labels[1400:]
    path = tmp_path_factory.mktemp("capture-video") / "digits.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 64))
    for i in range(240):
        frame = held[i]
        if i in BLENDED:
            other = next(j for j in range(i + 1, len(held)) if held_labels[j] != held_labels[i])
            frame = cv2.addWeighted(held[i], 0.5, held[other], 0.5, 0)
        writer.write(cv2.resize(frame[:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST))
    writer.release()
    return path


@pytest.fixture(scope="module")
def frame_scores(seed_exports, ambiguous_video):
    """Per frame of the video: (top score, top-1 minus top-2), from a stream without capture."""
    _, paths, _ = seed_exports
    out = {}
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf, \
            clf.stream(str(ambiguous_video), max_results=2) as stream:
        for r in stream:
            first, second = r.categories
            out[r.index] = (first.score, first.score - second.score)
    assert len(out) == 240
    return out


def below(frame_scores: dict, share: float, column: int = 0) -> tuple[float, set[int]]:
    """A threshold with about ``share`` of the frames under it (at least 10; column 0: the top score, 1: the
    margin), set midway between two distinct scores, and those frames. Taken from this model's own scores,
    so a test has hard frames whatever the model learned (no fixed 0.6 that one training run suits)."""
    values = sorted(v[column] for v in frame_scores.values())
    k = max(10, int(share * len(values)))
    while k < len(values) and values[k] == values[k - 1]:
        k += 1
    threshold = (values[k - 1] + values[k]) / 2
    return threshold, {i for i, v in frame_scores.items() if v[column] < threshold}


def captures(folder: Path) -> dict[int, dict]:
    """The folder's captures by frame index; every picture has its sidecar and vice versa."""
    pictures = sorted(folder.glob("*/*.jpg"))
    sidecars = sorted(folder.glob("*/*.json"))
    assert [p.with_suffix("") for p in pictures] == [s.with_suffix("") for s in sidecars]
    found = {}
    for picture in pictures:
        meta = json.loads(picture.with_suffix(".json").read_text())
        assert picture.parent.name == meta["label"]
        assert cv2.imread(str(picture)).shape == (meta["height"], meta["width"], 3)
        found[meta["frame"]] = meta
    assert len(found) == len(pictures)
    return found


def test_captures_exactly_the_frames_under_the_threshold(seed_exports, ambiguous_video, frame_scores, tmp_path):
    _, paths, _ = seed_exports
    model = paths["tflite_int8"]
    threshold, hard = below(frame_scores, 0.1)
    assert 10 <= len(hard) < 240
    with Classifier.from_path(model, num_threads=1) as clf:
        with clf.stream(str(ambiguous_video), capture=CaptureOptions(tmp_path / "hard", below_score=threshold,
                                                                    queue_size=256)) as stream:
            results = list(stream)
        summary = stream.summary
    assert len(results) == 240
    assert summary.capture.seen == 240 and summary.capture.hard == len(hard)
    assert (summary.capture.written, summary.capture.dropped, summary.capture.queued) == (len(hard), 0, 0)
    found = captures(tmp_path / "hard")
    assert set(found) == hard
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    for index, meta in found.items():
        assert meta["model_sha256"] == sha and meta["source"].endswith("digits.avi")
        assert meta["score"] == pytest.approx(frame_scores[index][0], abs=1e-6)
        assert meta["scores"][meta["label"]] == max(meta["scores"].values())  # ties happen (0.5, 0.5)
        assert meta["reasons"] == ["score"]
    # the layout eval and --calib read: label folders of images (the sidecars are not images)
    assert len(list_images(tmp_path / "hard")) == len(hard)


def test_margin_rule(seed_exports, ambiguous_video, frame_scores, tmp_path):
    _, paths, _ = seed_exports
    margin, hard = below(frame_scores, 0.1, column=1)
    assert 10 <= len(hard) < 240
    options = CaptureOptions(tmp_path, below_score=None, below_margin=margin, queue_size=256)
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf, clf.stream(str(ambiguous_video),
                                                                                      capture=options) as stream:
        list(stream)
    assert set(captures(tmp_path)) == hard


class GatedStore(FolderStore):
    """A disk slower than the stream: the first save waits until the test opens the gate."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.gate = threading.Event()
        self.waiting = threading.Event()

    def save(self, name: str, picture: bytes, sidecar: bytes) -> None:
        self.waiting.set()
        self.gate.wait()
        super().save(name, picture, sidecar)


def test_a_disk_slower_than_the_stream_drops_and_counts_but_never_blocks(seed_exports, ambiguous_video,
                                                                         frame_scores, tmp_path):
    _, paths, _ = seed_exports
    threshold, hard = below(frame_scores, 0.1)  # more hard frames than the queue holds
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf:
        store = GatedStore(tmp_path)
        writer = HardExamples(CaptureOptions(tmp_path, below_score=threshold, queue_size=4), labels=clf.labels,
                              model_sha256=clf.sha256, store=store)
        with clf.stream(str(ambiguous_video), capture=writer) as stream:
            results = list(stream)  # the whole video is classified while the writer is stuck in its first save
        assert len(results) == 240
        # the writer runs at idle priority: on a busy machine it may reach its first save only now
        assert store.waiting.wait(timeout=120), "the writer never started its first save"
        during = writer.stats
        store.gate.set()
        final = writer.close()
    assert during.written == 0 and during.dropped > 0
    assert final.hard == len(hard) and final.queued == 0
    assert final.written + final.dropped == len(hard) and final.written <= 1 + 4
    found = captures(tmp_path)
    assert len(found) == final.written and set(found) <= hard
    assert stream.summary.capture == final  # a writer the app made is the app's to close; stats are shared


@pytest.mark.parametrize("cap", ["files", "mb"])
def test_the_folder_never_grows_past_its_caps(seed_exports, ambiguous_video, frame_scores, tmp_path, cap):
    _, paths, _ = seed_exports
    threshold, hard_set = below(frame_scores, 0.1)
    hard = sorted(hard_set)
    folder = tmp_path / "hard"
    sizes: list[tuple[int, int]] = []

    class Watching(FolderStore):  # the folder's size after every write, from the disk itself
        def save(self, name, picture, sidecar):
            super().save(name, picture, sidecar)
            files = [p for p in folder.rglob("*") if p.is_file()]
            sizes.append((len(files), sum(p.stat().st_size for p in files)))

    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf:
        limit = {"max_files": 5} if cap == "files" else {"max_mb": 0.012}
        for _ in range(2):  # the second run finds the first run's captures and keeps the caps with them
            writer = HardExamples(CaptureOptions(folder, below_score=threshold, queue_size=256, **limit), labels=clf.labels,
                                  model_sha256=clf.sha256, store=Watching(folder))
            with clf.stream(str(ambiguous_video), capture=writer) as stream:
                list(stream)
            stats = writer.close()
            assert stats.written == len(hard) and stats.removed > 0
    assert len(sizes) == 2 * len(hard)
    if cap == "files":
        assert max(n for n, _ in sizes) == 2 * 5  # a picture and its sidecar each
        assert sorted(captures(folder)) == hard[-5:]  # the newest kept, the oldest removed first
    else:
        assert max(b for _, b in sizes) <= 12_000 and len(captures(folder)) >= 2
        assert sorted(captures(folder)) == hard[-len(captures(folder)):]


def test_every_n_and_per_minute(tmp_path):
    now = [0.0]
    labels = ("a", "b")
    unsure, sure = np.array([0.55, 0.45], np.float32), np.array([0.95, 0.05], np.float32)
    frame = np.full((16, 16, 3), 80, np.uint8)
    writer = HardExamples(CaptureOptions(tmp_path / "n", every_n=3, queue_size=100), labels=labels)
    queued = [i for i in range(30) if writer.offer(frame, unsure if i % 2 else sure, Origin(index=i))]
    stats = writer.close()
    assert queued == [1, 7, 13, 19, 25]  # one in every 3 hard frames (the odd ones): 1st, 4th, 7th...
    assert (stats.seen, stats.hard, stats.skipped, stats.written) == (30, 15, 10, 5)
    writer = HardExamples(CaptureOptions(tmp_path / "m", max_per_minute=2, queue_size=100), labels=labels,
                          clock=lambda: now[0])
    taken = []
    for step in range(8):
        now[0] = step * 20.0  # a frame every 20 s
        taken += [step] if writer.offer(frame, unsure, Origin(index=step)) else []
    writer.close()
    assert taken == [0, 1, 3, 4, 6, 7]  # never more than 2 in any 60 s


def test_writers_sharing_a_folder_keep_each_others_files(tmp_path, monkeypatch):
    """Two writers on one folder (two cameras) capturing at the same microsecond keep both captures; a
    writer starting up removes a killed writer's leftovers, not another writer's files in flight."""
    import datetime as dt
    import os
    import time
    import types

    from edgecls.runtime import capture as capture_module
    from edgecls.runtime.capture_store import STALE_S

    instant = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.timezone.utc)
    frozen = types.SimpleNamespace(timezone=dt.timezone, datetime=types.SimpleNamespace(now=lambda tz=None: instant))
    monkeypatch.setattr(capture_module, "dt", frozen)
    folder = tmp_path / "hard"
    (folder / "a").mkdir(parents=True)
    in_flight = [folder / "a" / ".20261129-120000-000000-123456-0.jpg.tmp",  # being written
                 folder / "a" / "20261129-120000-000000-123456-1.json"]  # between its two renames
    left = [folder / "a" / ".20261129-100000-000000-abcdef-0.jpg.tmp", folder / "a" / "20261129-100000-000000-abcdef-1.json"]
    for path in in_flight + left:
        path.write_bytes(b"{}")
    long_ago = time.time() - 2 * STALE_S
    for path in left:
        os.utime(path, (long_ago, long_ago))
    labels = ("a", "b")
    unsure, frame = np.array([0.55, 0.45], np.float32), np.full((16, 16, 3), 80, np.uint8)
    first = HardExamples(CaptureOptions(folder), labels=labels)
    second = HardExamples(CaptureOptions(folder), labels=labels)
    assert first.offer(frame, unsure, Origin(index=0)) and second.offer(frame, unsure, Origin(index=1))
    assert first.close().written == second.close().written == 1
    assert all(p.exists() for p in in_flight) and not any(p.exists() for p in left)
    pictures = sorted(folder.glob("a/*.jpg"))  # each writer's capture number 0, at the same instant
    assert sorted(json.loads(p.with_suffix(".json").read_text())["frame"] for p in pictures) == [0, 1]


def test_live_sessions_capture(seed_exports, digits, tmp_path):
    _, paths, _ = seed_exports
    images, _ = digits
    blend = cv2.addWeighted(images[1400], 0.5, images[1401], 0.5, 0)[:, :, ::-1].copy()
    done = threading.Event()
    with Classifier.from_path(paths["tflite_int8"], num_threads=1) as clf:
        # under 1: every frame, as a uint8 output's highest score is 255/256 (whatever the model learned)
        with clf.live(lambda r: done.set(), capture=CaptureOptions(tmp_path, below_score=1.0)) as session:
            scores = clf.scores(blend)
            assert scores.max() < 1.0
            session.classify_async(blend, 1.0)
            assert done.wait(30)
        assert session.summary.capture.written == 1
    (meta,) = captures(tmp_path).values()
    assert meta["source"] == "live" and meta["timestamp_ms"] == 1.0
    assert np.allclose(list(meta["scores"].values()), scores, atol=1e-6)


def test_bad_capture_options(tmp_path, color_model):
    for bad in ({"below_score": None}, {"below_score": 1.5}, {"every_n": 0}, {"max_files": 0}, {"max_mb": -1},
                {"queue_size": 0}, {"max_per_minute": 0}):
        with pytest.raises(OptionError):
            CaptureOptions(tmp_path, **bad)
    with Classifier.from_path(color_model) as clf:
        for open_with in (lambda c: clf.stream([np.zeros((8, 8, 3), np.uint8)], capture=c),
                          lambda c: clf.live(print, capture=c)):
            with pytest.raises(OptionError, match="capture takes CaptureOptions"):
                open_with(str(tmp_path))  # a folder name is not options
    assert list(tmp_path.iterdir()) == []


def test_stream_command_captures(seed_exports, ambiguous_video, frame_scores, tmp_path):
    _, paths, _ = seed_exports
    threshold, hard = below(frame_scores, 0.15)
    assert len(hard) > 8  # more hard frames than the cap keeps (at least 10 by construction)
    proc = subprocess.run([sys.executable, "-m", "edgecls", "stream", str(paths["tflite_int8"]), str(ambiguous_video),
                           "--capture", str(tmp_path / "hard"), "--capture-below", repr(threshold),
                           "--capture-max-files", "8",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])["summary"]
    assert summary["capture"]["hard"] == len(hard) and summary["capture"]["written"] == len(hard)
    assert sorted(captures(tmp_path / "hard")) == sorted(hard)[-8:]
    usage = subprocess.run([sys.executable, "-m", "edgecls", "stream", str(paths["tflite_int8"]), str(ambiguous_video),
                            "--capture-below", "0.9"], capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "--capture DIR" in usage.stderr


@pytest.mark.slow
def test_a_long_capturing_stream_costs_constant_memory(color_model, tmp_path):
    """200,000 frames, every one hard, the folder capped at 200 captures and the writer behind (it drops):
    RSS over the second half grows by under 1 MB (5 bytes a frame; the counts and the folder stay bounded)."""
    soak = Path(__file__).resolve().parents[2] / "benchmarks" / "suite" / "capture_soak.py"
    proc = subprocess.run([sys.executable, str(soak), str(color_model), str(tmp_path / "hard"), "--frames", "200000"],
                          capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    rss, c = out["rss_mb"], out["capture"]
    assert out["classified"] == 200_000 and len(rss) == 10
    assert c["hard"] == 200_000 and c["written"] + c["dropped"] + c["skipped"] + c["failed"] == c["hard"]
    assert c["written"] > 200 and c["removed"] == c["written"] - 200
    assert len(list((tmp_path / "hard").rglob("*.jpg"))) == 200 == len(list((tmp_path / "hard").rglob("*.json")))
    assert rss[-1] - rss[4] < 1.0, rss


def test_links_planted_in_the_capture_folder_are_never_followed(tmp_path):
    """Someone who can write the capture folder plants links (issue 28, finding 7): at the temporary names
    earlier versions used, at a capture's final name, and as a label folder pointing elsewhere. Every
    target stays untouched, and nothing outside the folder is written, listed or cleaned up."""
    import os

    root, outside = tmp_path / "hard", tmp_path / "outside"
    outside.mkdir()
    target = outside / "precious.txt"
    target.write_bytes(b"keep me")
    stale = outside / ".20260101-000000-000000-abcdef-1.jpg.tmp"  # looks like a leftover; is not ours
    stale.write_bytes(b"keep me too")
    os.utime(stale, (0, 0))
    (root / "3").mkdir(parents=True)
    stem = "20261204-120000-000001-abcdef-1"
    for name in (f".{stem}.jpg.tmp", f".{stem}.json.tmp", f"{stem}.jpg"):
        (root / "3" / name).symlink_to(target)
    (root / "7").symlink_to(outside, target_is_directory=True)
    store = FolderStore(root)
    store.save(f"3/{stem}", b"picture", b"{}")
    assert (root / "3" / f"{stem}.jpg").read_bytes() == b"picture" and not (root / "3" / f"{stem}.jpg").is_symlink()
    assert (root / "3" / f"{stem}.json").read_bytes() == b"{}"
    with pytest.raises(OSError):
        store.save(f"7/{stem}", b"picture", b"{}")  # the label folder is a link: refused, not entered
    with pytest.raises(OSError):
        store.save(f"../outside/{stem}", b"picture", b"{}")
    assert store.existing() == [(f"3/{stem}", len(b"picture") + 2)]  # the linked label folder is not listed
    store.remove(f"3/{stem}")
    with pytest.raises(OSError):
        store.remove(f"7/{stem}")
    assert target.read_bytes() == b"keep me" and stale.read_bytes() == b"keep me too"
    assert sorted(p.name for p in outside.iterdir()) == sorted([target.name, stale.name])
