"""Outputs a new run would replace are moved aside, never truncated or overwritten.

Generations can be hours of GPU sampling. When a run with another model, other problems or other decoding
flags would start them afresh (a typo'd ``--model`` that happens to exist, a pipeline rerun with changed
params), the old files move into ``previous-N/`` in the output folder (N one more than the highest there),
together with the results and metrics scored from them: nothing is lost to a wrong flag, nothing stale is
left looking current, and ``--execute_only --output_dir .../previous-N`` can score them again.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path

__all__ = ["set_aside"]

_PREVIOUS = re.compile(r"previous-(\d+)")


def set_aside(folder: str | Path, paths: Sequence[str | Path]) -> Path:
    """Move those of ``paths`` that exist into a new ``folder/previous-N/``, in order; returns it.

    Files in ``folder`` move with a rename (atomic); one elsewhere (the metrics) is copied and then
    removed. Give the file that marks the need last: a run killed in between moves it on its next start.
    """
    root = Path(folder)
    n = 1 + max((int(m[1]) for p in root.glob("previous-*") if (m := _PREVIOUS.fullmatch(p.name))), default=0)
    while True:
        target = root / f"previous-{n}"
        try:
            target.mkdir(parents=True)
            break
        except FileExistsError:  # another run took that number meanwhile
            n += 1
    for i, path in enumerate(Path(p) for p in paths):
        if path.exists():
            dest = target / path.name
            if dest.exists():  # two files of one name (e.g. --metrics named like an output)
                dest = target / f"{i}-{path.name}"
            shutil.move(path, dest)
    return target
