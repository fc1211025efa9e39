"""Side environments set themselves up on first use, so a plain ``pytest`` runs what CI runs."""

import pytest
from side_envs import ensure


def test_missing_environment_runs_its_script_once(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGECLS_SKIP_SIDE_ENVS", raising=False)
    marker, count = tmp_path / "made", tmp_path / "runs"
    script = tmp_path / "setup.sh"
    script.write_text(f"echo run >> {count}\ntouch {marker}\n")
    ensure(str(script), marker.exists, "the test environment")
    ensure(str(script), marker.exists, "the test environment")  # present now: not run again
    assert marker.exists() and count.read_text() == "run\n"


def test_a_failing_script_fails_the_test_and_an_opt_out_skips(tmp_path, monkeypatch):
    monkeypatch.delenv("EDGECLS_SKIP_SIDE_ENVS", raising=False)
    script = tmp_path / "setup.sh"
    script.write_text("echo no network >&2\nexit 3\n")
    with pytest.raises(pytest.fail.Exception, match=r"could not set it up \(exit 3\):\nno network"):
        ensure(str(script), lambda: False, "the broker")
    monkeypatch.setenv("EDGECLS_SKIP_SIDE_ENVS", "1")
    with pytest.raises(pytest.skip.Exception, match="EDGECLS_SKIP_SIDE_ENVS=1"):
        ensure(str(script), lambda: False, "the broker")
