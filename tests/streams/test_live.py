"""Live sessions: frames pushed by the app with classify_async, results on a callback."""

import threading

import cv2
import numpy as np
import pytest

from edgecls.runtime import Classifier, ImageError, StreamError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def _frames(digits, start, count):
    images, labels = digits
    frames = [cv2.resize(im[:, :, ::-1], (64, 64), interpolation=cv2.INTER_NEAREST)
              for im in images[start:start + count]]
    return frames, [str(label) for label in labels[start:start + count]]


def test_every_frame_is_classified_when_the_app_waits(int8_model, digits):
    frames, labels = _frames(digits, 1400, 40)
    results, ready = [], threading.Event()

    def on_result(result):
        results.append(result)
        ready.set()

    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf, clf.live(on_result) as session:
        for i, frame in enumerate(frames):
            ready.clear()
            session.classify_async(frame, timestamp_ms=40.0 * i)
            assert ready.wait(10)
        summary = session.summary
    assert [r.index for r in results] == list(range(40))
    assert [r.timestamp_ms for r in results] == [40.0 * i for i in range(40)]
    assert sum(r.top.label == label for r, label in zip(results, labels, strict=True)) >= 36
    assert all(np.array_equal(r.frame, f) for r, f in zip(results, frames, strict=True))
    assert (summary.frames_read, summary.classified, summary.dropped) == (40, 40, 0)
    assert threading.active_count() == threads_before


def test_a_fast_producer_gets_drops_counted_and_the_newest_frame(int8_model, digits):
    frames, _ = _frames(digits, 0, 50)
    results = []
    with Classifier.from_path(int8_model) as clf, clf.live(results.append) as session:
        for i in range(3000):
            session.classify_async(frames[i % 50], timestamp_ms=float(i))
    summary = session.summary
    assert summary.frames_read == 3000 and summary.dropped > 0
    assert summary.classified + summary.dropped == 3000 == len(results) + summary.dropped
    indices = [r.index for r in results]
    assert indices == sorted(set(indices)) and indices[-1] == 2999  # close() classifies the waiting frame


def test_the_pushed_buffer_may_be_reused(int8_model, digits):
    frames, _ = _frames(digits, 1400, 2)
    buffer = frames[0].copy()
    results, ready = [], threading.Event()
    with Classifier.from_path(int8_model) as clf:
        expected = clf.classify(frames[0]).top.label
        with clf.live(lambda r: (results.append(r), ready.wait(10))) as session:
            session.classify_async(buffer, 0.0)
            buffer[:] = 0  # the app overwrites its capture buffer at once
            ready.set()
    assert results[0].top.label == expected and results[0].frame.any()


def test_misuse_is_a_stream_error(int8_model, digits):
    frames, _ = _frames(digits, 0, 2)
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with clf.live(lambda r: None) as session:
            session.classify_async(frames[0], 10.0)
            with pytest.raises(StreamError, match=r"timestamps must increase: got 10\.0 after 10\.0"):
                session.classify_async(frames[1], 10.0)
            with pytest.raises(ImageError, match="expected an H×W"):
                session.classify_async(np.zeros((2, 2, 2, 2), np.uint8), 11.0)
            with pytest.raises(StreamError, match="takes an image array, got str"):
                session.classify_async("frame.jpg", 12.0)
        with pytest.raises(StreamError, match="closed live session"):
            session.classify_async(frames[1], 20.0)
        with pytest.raises(StreamError, match="must be callable"):
            clf.live(None)
    assert threading.active_count() == threads_before


def test_a_failing_callback_is_reported_to_the_app(int8_model, digits):
    frames, _ = _frames(digits, 0, 2)

    def broken(result):
        raise RuntimeError("display gone")

    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        session = clf.live(broken)
        session.classify_async(frames[0], 0.0)
        with pytest.raises(StreamError, match="RuntimeError: display gone") as info:
            session.close()
        assert isinstance(info.value.__cause__, RuntimeError)
        assert session.summary.ended == "error: RuntimeError"
    assert threading.active_count() == threads_before
