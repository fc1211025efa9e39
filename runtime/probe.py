"""Fresh-process probes: run Python in a new process that prints one JSON document on its last line.

What a deployment measures (an engine call, a cold start) must be measured in a process that holds only
the runtime, not in one holding TensorFlow, the Keras model or a benchmark's other models. The export's
ladder timings, ``edgecls bench``'s cold start and the benchmark suites all start such a process with
:func:`run_probe`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from edgecls.runtime.errors import EdgeclsError, MeasurementError

__all__ = ["run_probe"]


def run_probe(argv: Sequence[str], *, what: str, timeout_s: float = 600, env: Mapping[str, str] | None = None,
              error: type[EdgeclsError] = MeasurementError) -> Any:
    """Run ``argv`` (``sys.executable`` is put first when ``argv`` starts with ``-c`` or ``-m``) and return
    the JSON document on the last line of its standard output.

    Raises:
        MeasurementError: (or ``error``) the process ran past ``timeout_s``, failed (the message ends with
            the last line it wrote on stderr), or printed no JSON; ``what`` names the probe in the message.
    """
    argv = [sys.executable, *argv] if argv and argv[0] in ("-c", "-m") else list(argv)
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=environment)
    except subprocess.TimeoutExpired as exc:
        raise error(f"{what} took over {timeout_s:g} s") from exc
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        raise error(f"{what} failed ({lines[-1].strip() if lines else f'exit {done.returncode}'})")
    lines = done.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError) as exc:
        raise error(f"{what} printed no result (its last line: {lines[-1][:200] if lines else 'nothing'!r})") from exc
