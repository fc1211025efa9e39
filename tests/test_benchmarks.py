"""The benchmark suite's own code: the stream-throughput probe and the results page (no timing asserts)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from suite.streaming import stream_throughput, write_video

from edgecls.runtime import Classifier

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def test_stream_throughput_measures_every_way_through_the_video(tmp_path, int8_model):
    from edgecls.bench.measure import camera_frames

    video = write_video(tmp_path / "v.avi", camera_frames((160, 120)), 24)
    with Classifier.from_path(int8_model, num_threads=1) as clf:
        result = stream_throughput(clf, video, repeats=1)
    assert result["frames"] == 24
    assert all(result[k] > 0 for k in ("decode_ms", "classify_ms", "sequential_fps", "stream_fps", "bound_fps"))
    assert result["rounds"] == 1
    assert result["bound_fps"] == pytest.approx(1000 / max(result["decode_ms"], result["classify_ms"]))
    assert result["over_bound"] == pytest.approx(result["stream_fps"] / result["bound_fps"])
    assert result["over_sequential"] == pytest.approx(result["stream_fps"] / result["sequential_fps"])


def test_results_page_shows_each_target_direction():
    import run

    page = run.render({"date": "d", "machine": {"cores": 2, "processor": "x", "python": "3"}, "threads": 2,
                       "runs": 1, "notes": [],
                       "ratios": [run.ratio("a / b", 0.5, 0.7, {}),
                                  run.ratio("stream / bound", 0.95, 0.9, {}, higher_is_better=True),
                                  run.ratio("stream / sequential", 1.1, 1.2, {}, higher_is_better=True)]})
    assert "| 1 | a / b | 0.500 | ≤ 0.7 | yes |" in page
    assert "| 2 | stream / bound | 0.950 | ≥ 0.9 | yes |" in page
    assert "| 3 | stream / sequential | 1.100 | ≥ 1.2 | NO |" in page
