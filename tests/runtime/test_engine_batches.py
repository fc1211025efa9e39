"""LiteRT batches: single images and batches run on interpreters that are never resized (a resize re-plans
XNNPACK on every change of batch size), and a batch interpreter is only ever made from the file as it was
loaded."""

import logging
import os
import shutil

import numpy as np
import pytest

from edgecls.runtime import Classifier
from edgecls.runtime.backends.litert import BATCH_STEP


def _input_shape(interpreter) -> list[int]:
    return [int(d) for d in interpreter.get_input_details()[0]["shape"]]


@pytest.mark.parametrize("fmt", ["tflite_int8", "tflite_fp32"])
def test_batches_of_any_size_equal_single_images_and_resize_nothing(seed_exports, fmt):
    """Batches of 3, 8, 13 and 21 images between single ones: every score equals the image's own
    ``classify`` (int8 bit for bit), the first interpreter keeps its batch of one, and every step of 8 runs
    on one second interpreter made once, still of 8."""
    _, paths, (images, _) = seed_exports
    with Classifier.from_path(paths[fmt], num_threads=1) as clf:
        singles = np.stack([clf.classify(image, color="rgb").scores for image in images[:21]])
        backend = clf.backend
        seen = set()
        for n in (3, 8, 1, 13, 21, 1, 8):
            scores = clf.scores_batch(list(images[:n]), color="rgb")
            if fmt == "tflite_int8":
                assert np.array_equal(scores, singles[:n]), n
            else:
                np.testing.assert_allclose(scores, singles[:n], atol=1e-5)
            assert _input_shape(backend._interpreter) == [1, 32, 32, 3]
            if n >= BATCH_STEP:
                seen.add(id(backend._many))
                assert _input_shape(backend._many) == [BATCH_STEP, 32, 32, 3]
        assert len(seen) == 1 and None not in {backend._many}


def test_a_replaced_file_is_not_what_batches_run(seed_exports, tmp_path, caplog):
    """A model file replaced after it was loaded (another model renamed over it, as an update does) never
    becomes a batch interpreter: the batch runs one image at a time on the model that was loaded and
    checked, with one log line that says why."""
    _, paths, (images, _) = seed_exports
    path = tmp_path / "model.tflite"
    shutil.copyfile(paths["tflite_int8"], path)
    with Classifier.from_path(path, num_threads=1) as clf:
        singles = np.stack([clf.classify(image, color="rgb").scores for image in images[:9]])
        other = tmp_path / "other.tflite"
        shutil.copyfile(paths["tflite_fp32"], other)
        os.replace(other, path)
        with caplog.at_level(logging.WARNING, logger="edgecls"):
            for _ in range(2):
                assert np.array_equal(clf.scores_batch(list(images[:9]), color="rgb"), singles)
        assert clf.backend._many is None
    changed = [r.getMessage() for r in caplog.records if "changed since it was loaded" in r.getMessage()]
    assert len(changed) == 1 and str(path) in changed[0]
