"""The process's peak memory, for the cost lines stages print at their end."""

from __future__ import annotations

import resource
import sys
from pathlib import Path

__all__ = ["peak_rss_bytes"]

_STATUS = Path("/proc/self/status")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far, in bytes.

    Linux: ``VmHWM``, the high-water mark of this program's own memory. ``ru_maxrss`` is the fallback
    only, because on Linux it keeps the parent's resident size from before ``exec``: a stage started by
    a big process (a test runner, a workflow engine) would report at least that parent's memory.
    """
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # Linux reports KiB, macOS bytes
