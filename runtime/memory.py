"""Peak resident memory of the current process (the runtime's benchmarks and the export report use it)."""

from __future__ import annotations

import sys

__all__ = ["peak_rss_mb"]


def peak_rss_mb() -> float:
    """Peak RSS in MB (10⁶ bytes, as every size edgecls prints): ``VmHWM`` on Linux (it starts afresh at exec, whereas
    ``getrusage().ru_maxrss`` keeps the parent's peak across fork and exec); ru_maxrss elsewhere."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024 / 1e6  # kB (KiB) → MB
    except OSError:
        pass
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6  # bytes on macOS, KiB elsewhere
