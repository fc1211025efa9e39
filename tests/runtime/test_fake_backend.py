"""edgecls.runtime.testing.FakeBackend: the runtime's test seam runs the real pre- and postprocessing
around scripted scores and failures."""

import numpy as np
import pytest

from edgecls.runtime import Classifier, ClosedError, InferenceError, OptionError
from edgecls.runtime.testing import FakeBackend, FakeEngineFailure

FRAME = np.zeros((48, 64, 3), np.uint8)


def test_scripted_rows_are_answered_in_turn_through_the_real_postprocessing():
    fake = FakeBackend(["cat", "dog", "fox"], scores=[[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], size=(32, 32))
    with Classifier.from_backend(fake, name="pets") as clf:
        assert clf.labels == ("cat", "dog", "fox") and clf.has_card and clf.backend is fake
        first = clf.classify(FRAME)
        assert [c.label for c in first.categories] == ["cat", "dog", "fox"]
        assert first.categories[0].score == pytest.approx(0.7)
        batch = clf.classify_batch([FRAME] * 3, max_results=1, denylist=["fox"])
        # rows 1, 0, 1 of the script (cycled); "fox" denied, so row 1 answers "dog"
        assert [r.categories[0].label for r in batch] == ["dog", "cat", "dog"]
        assert clf.classify(FRAME, score_threshold=0.75).categories == ()
    assert fake.calls == 3 and fake.images == 5 and fake.batches == [1, 3, 1] and fake.closed


def test_the_input_it_receives_is_the_prepared_tensor():
    seen = []

    def script(batch):
        seen.append(batch.copy())
        return np.tile([0.5, 0.5], (len(batch), 1))

    fake = FakeBackend(["a", "b"], scores=script, size=(20, 30), channels=1)
    with Classifier.from_backend(fake) as clf:
        clf.classify(np.full((100, 100, 3), 255, np.uint8))
    (batch,) = seen
    assert batch.shape == (1, 20, 30, 1) and batch.dtype == np.float32 and np.allclose(batch, 1.0)


def test_scripted_failures_reach_the_caller_as_inference_errors_with_their_cause():
    fake = FakeBackend(["a", "b"], fail_at={1})
    with Classifier.from_backend(fake) as clf:
        assert clf.classify(FRAME).categories[0].label == "a"
        with pytest.raises(InferenceError, match="scripted failure of engine call 1") as caught:
            clf.classify(FRAME)
        assert isinstance(caught.value.__cause__, FakeEngineFailure)
        assert clf.classify(FRAME).categories[0].label == "a"  # image 2: row 2 % 2 of the identity
    with pytest.raises(ClosedError):
        clf.classify(FRAME)


def test_a_multi_label_fake_reports_every_label_over_its_threshold():
    fake = FakeBackend(["person", "car", "dog"], scores=[[0.9, 0.6, 0.1]], multi_label=True)
    with Classifier.from_backend(fake) as clf:
        result = clf.classify(FRAME)
    assert result.multi_label and result.labels == ("person", "car")


def test_bad_scripts_are_option_errors():
    with pytest.raises(OptionError, match="rows of 2 values"):
        FakeBackend(["a", "b"], scores=[[1.0, 0.0, 0.0]])
    with pytest.raises(OptionError, match="at least one label"):
        FakeBackend([])
    with pytest.raises(OptionError, match="1 or 3 channels"):
        FakeBackend(["a"], channels=4)
    with pytest.raises(OptionError, match="2 labels given"):
        Classifier.from_backend(FakeBackend(["a", "b", "c"]), labels=["x", "y"])


def test_a_fake_model_file_opens_by_path_and_refuses_what_is_not_one(tmp_path):
    """``write_fake_model`` + the ``fake`` backend: the same fake from a path, answering by brightness
    whatever the order; a file that is not a fake model is a ModelLoadError naming it; nothing in it runs."""
    from edgecls.runtime.errors import ModelLoadError
    from edgecls.runtime.testing import write_fake_model

    path = write_fake_model(tmp_path / "bands.fake", ["dark", "mid", "bright"], scores="brightness", size=(16, 16))
    with Classifier.from_path(path) as clf:
        assert clf.backend.name == "fake" and clf.labels == ("dark", "mid", "bright")
        frames = [np.full((30, 40, 3), v, np.uint8) for v in (250, 10, 128, 10)]
        assert [r.categories[0].label for r in clf.classify_batch(frames)] == ["bright", "dark", "mid", "dark"]
    (tmp_path / "other.fake").write_text('{"format": "onnx"}')
    with pytest.raises(ModelLoadError, match=r"other\.fake: not a fake model file"):
        Classifier.from_path(tmp_path / "other.fake")
    (tmp_path / "broken.fake").write_text("{")
    with pytest.raises(ModelLoadError, match=r"broken\.fake: not a fake model file"):
        Classifier.from_path(tmp_path / "broken.fake")
    with pytest.raises(OptionError, match="unknown score rule 'loudness'; choose from brightness"):
        write_fake_model(tmp_path / "x.fake", ["a"], scores="loudness")
    with pytest.raises(OptionError, match=r"name ends in \.fake"):
        write_fake_model(tmp_path / "x.json", ["a"])
    assert not (tmp_path / "x.fake").exists() and not (tmp_path / "x.json").exists()


def test_edgecls_plugins_bring_a_backend_to_the_cli(tmp_path):
    """``EDGECLS_PLUGINS`` names modules the CLI imports first: the fake backend (or a user's own) opens
    ``.fake`` files in ``edgecls predict``; without it the suffix is unknown; a module that does not import
    is one error line naming it."""
    import json
    import os
    import subprocess
    import sys

    import cv2

    from edgecls.runtime.testing import write_fake_model

    model = write_fake_model(tmp_path / "bands.fake", ["dark", "bright"], scores="brightness", size=(8, 8))
    image = tmp_path / "white.png"
    cv2.imwrite(str(image), np.full((20, 20, 3), 240, np.uint8))

    def predict(plugins):
        env = {**os.environ, "EDGECLS_PLUGINS": plugins}
        return subprocess.run([sys.executable, "-m", "edgecls", "predict", str(model), str(image), "--json"],
                              capture_output=True, text=True, timeout=120, env=env)

    done = predict("edgecls.runtime.testing")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["categories"][0]["label"] == "bright"
    plain = predict("")
    assert plain.returncode == 1 and "unsupported model format .fake" in plain.stderr
    missing = predict("no_such_plugin_module")
    assert missing.returncode == 1
    assert "error: EDGECLS_PLUGINS: cannot import no_such_plugin_module (ModuleNotFoundError" in missing.stderr
