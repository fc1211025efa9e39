"""Video and live-stream classification (runtime only; the seed CNN on real digits)."""

import threading

import cv2
import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.errors import OptionError, SourceError

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_video_mode_classifies_every_frame_in_order(int8_model, digit_video):
    path, expected = digit_video
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf, clf.stream(path) as stream:
        results = list(stream)
        summary = stream.summary
    assert [r.index for r in results] == list(range(40))
    assert [r.timestamp_ms for r in results] == sorted(r.timestamp_ms for r in results)
    hits = sum(r.top.label == label for r, label in zip(results, expected, strict=True))
    assert hits >= 36  # MJPG-compressed frames of the held-out digits
    assert (summary.frames_read, summary.classified, summary.dropped, summary.ended) == (40, 40, 0, "end of source")
    assert threading.active_count() == threads_before


def test_every_nth_frame_and_max_frames(int8_model, digit_video):
    path, _ = digit_video
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(path, every=3) as stream:
            assert [r.index for r in stream] == list(range(0, 40, 3))
        with clf.stream(path, max_frames=5) as stream:
            assert len(list(stream)) == 5 and stream.summary.ended == "max_frames"


def test_live_mode_drops_stale_frames_and_keeps_one_pending(int8_model, digits):
    images, _ = digits
    frames = [cv2.resize(im[:, :, ::-1], (64, 64)) for im in images[:50]]
    produced = []

    def fast_camera():
        for i in range(2000):  # far faster than the classifier
            produced.append(i)
            yield frames[i % len(frames)]

    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf, clf.stream(fast_camera(), mode="live") as stream:
        indices, pending, newest_when_done = [], [], []
        for result in stream:
            indices.append(result.index)
            pending.append(stream.pending)
            newest_when_done.append(len(produced) - 1)  # the newest frame read when this result came out
        summary = stream.summary
    assert summary.frames_read == 2000
    assert summary.dropped > 0 and summary.classified + summary.dropped == summary.frames_read
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert max(pending) <= 1  # no queue growth: only the newest frame waits
    # Freshness: each frame classified is the newest one read when the classifier became free (the
    # one being handed over may still be in flight), so no result is older than one classification.
    assert all(nxt >= newest - 1 for nxt, newest in zip(indices[1:], newest_when_done[:-1], strict=True))
    assert threading.active_count() == threads_before


def test_smoothing_and_events(int8_model, digits):
    images, labels = digits
    ones = [cv2.resize(im[:, :, ::-1], (64, 64)) for im, lab in zip(images, labels, strict=True) if lab == 1][:10]
    sevens = [cv2.resize(im[:, :, ::-1], (64, 64)) for im, lab in zip(images, labels, strict=True) if lab == 7][:10]
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(ones + sevens, events=True) as stream:
            events = [r.top.label for r in stream]
        with clf.stream(ones + sevens, smooth=5) as stream:
            smoothed = list(stream)
    assert events[0] == "1" and events[-1] == "7" and len(events) <= 6
    assert smoothed[-1].top.label == "7" and len(smoothed) == 20
    # Smoothed scores average the last five frames: the first seven is still mostly "1".
    assert smoothed[10].top.label == "1"


def test_truncated_video_ends_cleanly(int8_model, digit_video, tmp_path):
    path, _ = digit_video
    broken = tmp_path / "broken.avi"
    broken.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # the AVI header is whole, half the frames
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(broken) as stream:
            results = list(stream)
        assert 10 < len(results) < 40
        assert [r.index for r in results] == list(range(len(results)))
        assert stream.summary.ended == "end of source" and stream.summary.classified == len(results)
    assert threading.active_count() == threads_before


def test_unopenable_sources_are_clear_errors(int8_model, tmp_path):
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with pytest.raises(SourceError, match="no such video file"):
            clf.stream(tmp_path / "missing.mp4")
        with pytest.raises(SourceError, match="cannot open source"):
            clf.stream("http://127.0.0.1:9/stream.mjpg", open_timeout_s=2)
        with pytest.raises(OptionError, match="mode must be"):
            clf.stream([], mode="fast")
        with pytest.raises(OptionError, match="every must be a positive integer"):
            clf.stream([], every=0)
    assert threading.active_count() == threads_before


def test_breaking_out_of_the_loop_joins_the_reader(int8_model, digit_video):
    path, _ = digit_video
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(path) as stream:
            for result in stream:
                if result.index == 3:
                    break
        assert stream.summary.ended == "closed"
    assert threading.active_count() == threads_before


def test_stream_cli_json_lines_and_summary(capsys, int8_model, digit_video):
    import json

    from edgecls.cli import main

    path, expected = digit_video
    code = main(["stream", str(int8_model), str(path), "--json", "--every", "2"])
    lines = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert code == 0
    frames, summary = lines[:-1], lines[-1]["summary"]
    assert [f["frame"] for f in frames] == list(range(0, 40, 2))
    assert sum(f["categories"][0]["label"] == expected[f["frame"]] for f in frames) >= 18
    assert summary["classified"] == 20 and summary["frames_read"] == 40 and summary["ended"] == "end of source"
    code = main(["stream", str(int8_model), "/nonexistent/clip.mp4"])
    assert code == 1 and "no such video file" in capsys.readouterr().err


def test_keyboard_interrupt_in_the_loop_joins_the_reader(int8_model, digit_video):
    path, _ = digit_video
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with pytest.raises(KeyboardInterrupt), clf.stream(path, keep_frames=True) as stream:
            for result in stream:
                assert result.frame is not None and result.frame.shape == (64, 64, 3)
                if result.index == 2:
                    raise KeyboardInterrupt
        assert stream.summary.ended == "interrupted" and stream.summary.classified == 3
    assert threading.active_count() == threads_before


@pytest.fixture()
def http_video(digit_video):
    """The digits video served over HTTP by a server the test can stop (a network camera stand-in)."""
    import functools
    import http.server

    path, labels = digit_video
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(path.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/{path.name}", labels
    server.shutdown()
    server.server_close()
    thread.join()


def test_reconnect_reopens_a_network_source_that_ends(int8_model, http_video):
    from edgecls.runtime import Reconnect

    _, url, _ = http_video
    policy = Reconnect(attempts=2, initial_delay_s=0.05, max_delay_s=0.1)
    threads_before = threading.active_count()
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(url, reconnect=policy, max_frames=100) as stream:
            results = list(stream)
        summary = stream.summary
        # the 40-frame clip, played again after each reconnection, until max_frames
        assert (summary.classified, summary.reconnects, summary.ended) == (100, 2, "max_frames")
        assert [r.top.label for r in results[40:80]] == [r.top.label for r in results[:40]]
        assert [r.timestamp_ms for r in results] == sorted(r.timestamp_ms for r in results)
        with pytest.raises(OptionError, match="reconnect applies to cameras"):
            clf.stream([], reconnect=True)
        with pytest.raises(OptionError, match="attempts must be a positive integer"):
            Reconnect(attempts=0)
    assert threading.active_count() == threads_before


def test_reconnect_gives_up_after_its_attempts(int8_model, http_video):
    from edgecls.runtime import Reconnect

    server, url, _ = http_video
    policy = Reconnect(attempts=3, initial_delay_s=0.05, max_delay_s=0.2)
    threads_before = set(threading.enumerate())
    with Classifier.from_path(int8_model) as clf:
        with clf.stream(url, reconnect=policy, open_timeout_s=2) as stream:
            results = []
            for result in stream:
                results.append(result)
                if len(results) == 1:
                    server.shutdown()  # the camera goes away mid-stream
                    server.server_close()
        summary = stream.summary
    assert len(results) >= 1 and summary.reconnects == 0
    assert summary.ended.startswith("error:") and "cannot open source" in summary.ended
    assert set(threading.enumerate()) <= threads_before  # the reader is gone (and so is the server)


def test_stream_and_explain_settings_are_typed_options_and_unknown_ones_are_refused():
    from edgecls.runtime import OptionError
    from edgecls.runtime.stream import StreamOptions
    from edgecls.runtime.testing import FakeBackend

    frame = np.zeros((48, 64, 3), np.uint8)
    with Classifier.from_backend(FakeBackend(["a", "b"], size=(16, 16))) as clf:
        with clf.stream([frame] * 5, StreamOptions(every=2)) as stream:
            assert [r.index for r in stream] == [0, 2, 4]
        with clf.stream([frame] * 5, every=2, max_frames=2) as stream:  # the same fields as keywords
            assert [r.index for r in stream] == [0, 2]
        with pytest.raises(OptionError, match=r"unknown stream option.*evry; choose from mode, every"):
            clf.stream([frame], evry=2)
        with pytest.raises(OptionError, match="as a StreamOptions or as keywords, not both"):
            clf.stream([frame], StreamOptions(), every=2)
        with pytest.raises(OptionError, match="mode must be 'video' or 'live'"):
            StreamOptions(mode="fast")
        with pytest.raises(OptionError, match=r"unknown explain option.*patchh"):
            clf.explain(frame, patchh=0.1)


def test_events_and_an_engine_failure_mid_stream_with_a_scripted_fake():
    """No model: a FakeBackend scripts the scores frame by frame, so the events expected are exact (one per
    change of top label, and one when the score falls under the threshold); a scripted engine failure at
    frame 7 surfaces in the loop as an InferenceError and the reader thread is joined."""
    from edgecls.runtime import InferenceError
    from edgecls.runtime.testing import FakeBackend

    rows = [[0.9, 0.1]] * 3 + [[0.2, 0.8]] * 2 + [[0.55, 0.45]] + [[0.9, 0.1]] * 4
    frames = [np.zeros((24, 32, 3), np.uint8)] * len(rows)
    with Classifier.from_backend(FakeBackend(["empty", "person"], scores=rows, size=(8, 8))) as clf:
        with clf.stream(frames, events=True, score_threshold=0.6) as stream:
            events = [(r.index, r.top.label if r.top else None) for r in stream]
        assert events == [(0, "empty"), (3, "person"), (5, None), (6, "empty")]
    threads_before = threading.active_count()
    with Classifier.from_backend(FakeBackend(["empty", "person"], scores=rows, size=(8, 8), fail_at={7})) as clf:
        seen = []
        with pytest.raises(InferenceError, match="scripted failure of engine call 7"), clf.stream(frames) as stream:
            seen.extend(r.index for r in stream)
        assert seen == list(range(7))
    assert threading.active_count() == threads_before
