"""The one-process stage's outputs: the kept record lines written straight to ``{train,valid,test}.jsonl``.

The three files are committed as one group with ``stats.json`` (written after them, it marks a complete
set): a run killed at any point, or a worker killed, never leaves a new split beside an old one.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from gitnetic.common.io import atomic_open_group, remove_stale_temporaries
from gitnetic.data.corpus.decide import Kept
from gitnetic.data.corpus.splits import SPLITS

__all__ = ["SplitFiles"]


class SplitFiles:
    """The split files of ``out_dir``, open for writing while the stage decides (a context manager)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.writers: dict[str, IO[bytes]] = {}
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> SplitFiles:
        stats = self.out_dir / "stats.json"
        remove_stale_temporaries(stats)
        paths = [self.out_dir / f"{split}.jsonl" for split in SPLITS]
        handles = self._stack.enter_context(atomic_open_group(paths, "wb", invalidate=[stats]))
        self.writers = dict(zip(SPLITS, handles, strict=True))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)

    def emit(self, split: str, line: bytes) -> None:
        self.writers[split].write(line)

    def finish(self, moves: list[tuple[Kept, str]]) -> None:
        """Apply the small-corpus floor to the (still uncommitted) split files: each donor file is
        rewritten without its moved records, which are appended to their new split in ``moves`` order."""
        if not moves:
            return
        moving = {(item.split, item.line): target for item, target in moves}
        lines: dict[tuple[str, int], bytes] = {}
        for donor in sorted({item.split for item, _ in moves}):
            fh = self.writers[donor]
            fh.flush()
            with tempfile.TemporaryFile("w+b") as copy:
                with open(fh.name, "rb") as src:
                    shutil.copyfileobj(src, copy)
                copy.seek(0)
                fh.seek(0)
                fh.truncate()
                for index, line in enumerate(copy):
                    if (donor, index) in moving:
                        lines[donor, index] = line
                    else:
                        fh.write(line)
        for item, target in moves:
            self.writers[target].write(lines[item.split, item.line])
