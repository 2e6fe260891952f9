"""The console bar of the corpus stage's long read-clean-decide loop: documents, MB read, MB/s and kept."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm.auto import tqdm

from gitnetic.data.corpus.stats import SourceStats, human_bytes

__all__ = ["Progress"]

log = logging.getLogger(__name__)


class Progress:
    """One bar per source, and the read rate of the whole run (logged at the end)."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def bar(self, name: str, total: int | None, src: SourceStats) -> Iterator[Any]:
        bar = tqdm(total=total, desc=f"corpus {name}", unit="doc", disable=None, file=sys.stderr)

        def tracked(documents: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
            try:
                yield from _counted(documents)
            finally:  # a cap stopped the source early: close the documents now (cancels their cleaning)
                close = getattr(documents, "close", None)
                if close is not None:
                    close()

        def _counted(documents: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
            for n, (cand, done) in enumerate(documents, 1):
                self.read_bytes += cand.size
                if n % 64 == 0:
                    elapsed = max(time.perf_counter() - self.started, 1e-9)
                    bar.set_postfix_str(
                        f"{human_bytes(self.read_bytes)} read, {self.read_bytes / elapsed / 1e6:.1f} MB/s, "
                        f"kept {src.total_documents}",
                        refresh=False,
                    )
                bar.update()
                yield cand, done

        with bar:
            yield tracked

    def log_rate(self, workers: int | None) -> None:
        """``workers``: the cleaning processes (None: nothing was cleaned here, the parts were)."""
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        log.info(
            "corpus: read %s in %.1f s (%s/s)%s",
            human_bytes(self.read_bytes),
            elapsed,
            human_bytes(int(self.read_bytes / elapsed)),
            "" if workers is None else f" with {workers} worker process{'' if workers == 1 else 'es'}",
        )
