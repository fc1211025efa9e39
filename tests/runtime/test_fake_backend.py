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
