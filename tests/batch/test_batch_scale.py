"""edgecls batch at scale (slow): 20,000 images, a driver killed halfway and resumed, and a real
two-node Ray cluster on this machine with a worker process killed mid-run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgecls import realdata

pytestmark = pytest.mark.slow
pq = pytest.importorskip("pyarrow.parquet")
COUNT = 20_000


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """20,000 digit PNGs (the 1,797 digits, shifted by up to 2 pixels), 1,000 per sub-folder."""
    root = tmp_path_factory.mktemp("twenty-thousand")
    x, _ = realdata.digits_rgb(32)
    rng = np.random.default_rng(0)
    for i in range(COUNT):
        folder = root / f"{i // 1000:02d}"
        folder.mkdir(exist_ok=True)
        shifted = np.roll(x[i % len(x)], (int(rng.integers(-2, 3)), int(rng.integers(-2, 3))), axis=(0, 1))
        cv2.imwrite(str(folder / f"{i:05d}.png"), shifted)
    return root


@pytest.fixture(scope="module")
def model(seed_export) -> Path:
    return next(f.path for f in seed_export.files if (f.format, f.quantization) == ("tflite", "int8"))


@pytest.fixture(scope="module")
def predicted(model, big_folder, tmp_path_factory) -> dict[str, dict]:
    """``edgecls predict --json`` over the 20,000 images (its own process), by absolute path."""
    out = subprocess.run([sys.executable, "-m", "edgecls", "predict", str(model), str(big_folder), "--json",
                          "--top-k", "5"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    results = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(results) == COUNT
    return {os.path.abspath(r["image"]): r for r in results}


def rows_of(out: Path) -> dict[str, dict]:
    rows = pq.read_table(out).to_pylist()
    keyed = {r["path"]: r for r in rows}
    assert len(keyed) == len(rows), "an image was written twice"
    return keyed


def assert_as_predicted(rows: dict[str, dict], predicted: dict[str, dict]) -> None:
    assert set(rows) == set(predicted)
    for path, row in rows.items():
        categories = predicted[path]["categories"]
        assert row["labels"] == [c["label"] for c in categories], path
        np.testing.assert_allclose(row["scores"], [c["score"] for c in categories], atol=1e-5)


def batch(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgecls", "batch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for_progress(proc: subprocess.Popen, percent: int) -> list[str]:
    """Read the run's progress lines until one says at least ``percent`` % (fails if it ends first)."""
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("batch: ") and int(line.split("(")[1].split("%")[0]) >= percent:
            return seen
    raise AssertionError(f"the run ended before {percent} %: {''.join(seen)[-2000:]}")


def test_sigterm_halfway_then_resume_gives_every_image_once(tmp_path, model, big_folder, predicted):
    out = tmp_path / "out"
    proc = batch(str(model), str(big_folder), "-o", str(out), "--workers", "2", "--drift")
    wait_for_progress(proc, 50)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143 and "terminated" in err
    first = len(rows_of(out))
    assert 0 < first < COUNT  # killed halfway: shards committed, the rest not
    resumed = batch(str(model), str(big_folder), "-o", str(out), "--resume", "--json", "--drift")
    stdout, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-2000:]
    summary = json.loads(stdout)
    assert summary["skipped"] == first and summary["classified"] == COUNT - first
    assert summary["rows"] == COUNT
    assert summary["drift"]["images"] == COUNT and summary["drift"]["shards_without"] == 0  # each tallied once
    assert_as_predicted(rows_of(out), predicted)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _map_workers() -> list[int]:
    """Process ids of Ray Data's map actors (their process title is ``ray::MapWorker(...)``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(b"ray::MapWorker"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return sorted(pids)


def test_ray_cluster_with_a_worker_killed_mid_run(tmp_path, model, big_folder, predicted):
    """A head node and a second node (one CPU each) started with ``ray start``; one map actor's process is
    killed (SIGKILL) while it reads an image of its block, after 20 % of the run: Ray restarts it and
    redoes that block; every image lands once, and is counted once by --drift."""
    pytest.importorskip("ray.data")
    ray = str(Path(sys.executable).with_name("ray"))
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # Ray's token authentication: the head writes ~/.ray/auth_token; a joining node and a driver use it
    # only in token mode
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token"}
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    subprocess.run([ray, "start", "--head", "--port", str(port), "--include-dashboard=false", *common],
                   check=True, capture_output=True, env=env, timeout=120)
    try:
        subprocess.run([ray, "start", "--address", address, *common], check=True, capture_output=True, env=env,
                       timeout=120)
        out = tmp_path / "out"
        proc = batch(str(model), str(big_folder), "-o", str(out), "--engine", "ray", "--ray-address", address,
                     "--json", "--drift", env=env)
        wait_for_progress(proc, 20)
        workers = _map_workers()
        assert len(workers) == 2, workers  # one actor per node
        _kill_inside_a_block(workers[0], big_folder, proc)
        stdout, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err[-3000:]
        summary = json.loads(stdout)
        assert summary["workers"] == 2 and summary["classified"] == summary["rows"] == COUNT
        assert summary["retried"] >= 1 and summary["worker_restarts"] >= 1, summary
        assert summary["drift"]["images"] == COUNT  # the block redone replaced its shard and its tally
        assert_as_predicted(rows_of(out), predicted)
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, timeout=120)


def _kill_inside_a_block(pid: int, folder: Path, proc: subprocess.Popen) -> str:
    """SIGKILL the map actor ``pid`` at a moment it is inside a block, not between two: it is stopped
    (SIGSTOP) again and again until one of ``folder``'s images is open in it (inside a block it opens its
    images one after another; between blocks it has none open), then killed while stopped there. Returns
    that image's path.

    Killed right after a progress line instead, the actor may be the one that has just finished a block
    and is fetching its next: then it has no block to redo (the likely cause of a CI run that counted
    no retry)."""
    prefix = os.path.realpath(folder) + os.sep
    fds = Path(f"/proc/{pid}/fd")
    while proc.poll() is None:
        os.kill(pid, signal.SIGSTOP)
        try:
            _wait_stopped(pid)
            for fd in fds.iterdir():
                try:
                    target = os.readlink(fd)
                except OSError:  # closed since the listing
                    continue
                if target.startswith(prefix):
                    os.kill(pid, signal.SIGKILL)
                    return target
        finally:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:  # killed and reaped
                pass
    raise AssertionError(f"the run ended before actor {pid} was seen reading an image: {proc.stderr.read()[-2000:]}")


def _wait_stopped(pid: int) -> None:
    """Return once ``pid`` is in the stopped state (SIGSTOP is delivered asynchronously)."""
    stat = Path(f"/proc/{pid}/stat")
    while True:
        state = stat.read_text().rsplit(")", 1)[1].split()[0]  # the field after the command's name
        if state in ("T", "t"):
            return
        assert state not in ("Z", "X"), f"actor {pid} died before it could be killed"
