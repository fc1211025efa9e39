"""Keep TensorFlow's native and Python chatter off the terminal during conversions.

TensorFlow, the TFLite converter and tf2onnx write logs straight to file
descriptors 1 and 2 from C++. Commands that convert run inside
:func:`captured_output`, which points both descriptors at a temporary file and
hands back a stream on the real stderr for the progress display. With
``verbose`` (``edgecls -v``) nothing is captured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from typing import TextIO

from edgecls.runtime.engine_log import redirect_fds, restore_fds

__all__ = ["captured_output"]


@contextlib.contextmanager
def captured_output(verbose: bool = False) -> Iterator[TextIO]:
    """Capture fds 1 and 2 (unless ``verbose``); yield a text stream on the original stderr."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    for name in ("tensorflow", "absl", "tf2onnx", "h5py"):
        logging.getLogger(name).setLevel(logging.DEBUG if verbose else logging.ERROR)
    if verbose:
        yield sys.stderr
        return
    progress = os.fdopen(os.dup(2), "w", buffering=1)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = redirect_fds((1, 2), sink)
        try:
            yield progress
        finally:
            restore_fds(saved)
            progress.close()
