"""The corpus stage as many jobs (Snakemake, SLURM): sign parts in parallel, decide once, write splits.

One process with N workers (:func:`gitnetic.data.corpus.stage.collect_corpus`) is enough up to the cores of
one machine. Beyond that the stage fans out as jobs that can run on different nodes:

1. ``--job sign --part_index i`` (``parts.count`` jobs): list every source (cheap: names and sizes), take
   part ``i`` of the candidates (contiguous byte ranges of the file list, see
   :func:`gitnetic.data.corpus.turns.plan_parts`), read, filter, redact and sign them in the same stage
   loop (with ``num_workers`` processes) and write ``parts/part-i-of-K.jsonl``
   (the record lines of documents that passed) and ``.meta`` (every candidate's verdict, signature included).
2. ``--job decide`` (one job): replays the parts' verdicts in corpus order through the same stage
   loop (:func:`gitnetic.data.corpus.loop.run_stage`) as the one-process stage (exact and near duplicates,
   caps, splits, the small-corpus floor), writes ``stats.json`` and ``parts/decisions-of-K.npz`` (where
   each part line goes). It reads no source file and cleans nothing.
3. ``--job write --split S`` (one job per split): copies the part lines the decisions route to ``S``, in
   order, into ``S.jsonl``.

The workers' verdicts and the decisions are computed by the code the one-process stage runs, in the
same order, so the outputs are byte-identical to it for every ``parts.count``. A git-history source is
signed whole by one job (its commits are only known by walking it). A dataset source (parquet, jsonl) is
planned by its units (Parquet row groups, JSONL files; sizes from footers and file sizes, no content
read); its sign jobs keep each row's key, language and fields in ``.meta``, so the decide job reads none. Every file is written through a
temporary and renamed, so a killed job leaves nothing that looks complete; rerunning it gives the same
bytes.

``.meta`` files are Python pickles (the MinHash objects of the LSH library): they are intermediate files
this stage writes and reads itself, never input from elsewhere.
"""

from __future__ import annotations

import contextlib
import pickle
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.common.io import atomic_open, atomic_open_group
from gitnetic.data.corpus.clean import Cleaned
from gitnetic.data.corpus.decide import Kept
from gitnetic.data.corpus.params import CorpusParams
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stats import CorpusStats
from gitnetic.data.corpus.turns import SourceTurn

__all__ = ["PartReplay", "PartWriter", "write_split"]

DROPPED = -1  # a part line's destination when the decisions drop it


def parts_dir(params: CorpusParams) -> Path:
    return Path(params.out_dir) / "parts"


def part_paths(params: CorpusParams, index: int) -> tuple[Path, Path]:
    """``(record lines, verdicts)`` of one part."""
    stem = parts_dir(params) / f"part-{index:05d}-of-{params.parts.count:05d}"
    return stem.with_suffix(".jsonl"), stem.with_suffix(".meta")


def decisions_path(params: CorpusParams) -> Path:
    return parts_dir(params) / f"decisions-of-{params.parts.count:05d}.npz"


def _check_part(params: CorpusParams, index: int | None) -> int:
    count = params.parts.count
    if index is None or not 0 <= index < count:
        raise ConfigError(
            f"--job sign needs --part_index in 0..{count - 1} (--parts.count {count}), got {index}"
        )
    return index


# ---------------------------------------------------------------------------------------------- sign
class PartWriter:
    """A sign job's sink: every verdict of its part, in corpus order, with the record lines of those that
    passed, written to the part's two files (committed together when the job ends)."""

    def __init__(self, params: CorpusParams, index: int | None) -> None:
        self.index = _check_part(params, index)
        self.paths = part_paths(params, self.index)
        self.signed = 0  # candidates signed
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> PartWriter:
        self.lines, self.meta = self._stack.enter_context(atomic_open_group(list(self.paths), "wb"))
        return self

    def __exit__(self, *exc: Any) -> bool | None:
        return self._stack.__exit__(*exc)

    def take(self, turn: SourceTurn, documents: Iterable[tuple[Candidate, Cleaned]]) -> None:
        """Record the part's range of source ``turn`` (a dataset's rows keep what decide needs of them)."""
        dataset = turn.opened.select is not None
        verdicts: list[tuple[Cleaned, int, Candidate | None]] = []
        for cand, done in documents:
            self.lines.write(done.line)
            verdicts.append(
                (done._replace(line=b""), len(done.line), cand._replace(read=None) if dataset else None)
            )
        _, lo, hi = turn.own_range()
        pickle.dump((turn.position, lo, hi, verdicts), self.meta, protocol=pickle.HIGHEST_PROTOCOL)
        self.signed += len(verdicts)

    def finish(self, stats: CorpusStats, sources: list[SourceParams], description: str) -> None:
        """Nothing to decide (the decide job does, from every part): ``stats`` only counts what this
        part signed, for the console."""
        stats.files_matched = self.signed


# -------------------------------------------------------------------------------------------- decide
class _PartReader:
    """Part ``i``'s verdicts, segment by segment in plan order, with their record lines."""

    def __init__(self, params: CorpusParams, index: int) -> None:
        lines_path, meta_path = part_paths(params, index)
        for path in (lines_path, meta_path):
            if not path.is_file():
                raise CorpusError(
                    f"corpus part {path} is missing; run the sign job for part {index} (--job sign "
                    f"--part_index {index} --parts.count {params.parts.count}) first"
                )
        self.index = index
        self.lines: IO[bytes] = open(lines_path, "rb")  # noqa: SIM115 - closed by close()
        self.meta: IO[bytes] = open(meta_path, "rb")  # noqa: SIM115
        self.next_line = 0  # part line number of the next segment's first record line
        self.next_offset = 0  # and its byte offset

    def load(self, position: int, lo: int, hi: int) -> list[tuple[Cleaned, int, int, int, Candidate | None]]:
        """The next segment, which must be candidates (or units) ``lo:hi`` of source ``position``: per
        candidate ``(verdict without its line, part line or -1, the line's byte offset, length, the
        candidate as the sign job saw it (a dataset's row) or None)``."""
        try:
            got = pickle.load(self.meta)
        except EOFError:
            got = None
        if got is None or tuple(got[:3]) != (position, lo, hi):
            raise CorpusError(
                f"corpus part {self.index} does not hold what the plan expects (source {position}, "
                f"candidates {lo}:{hi}): the sources changed since the sign jobs ran; rerun them"
            )
        out = []
        for verdict, length, cand in got[3]:
            if length:
                out.append((verdict, self.next_line, self.next_offset, length, cand))
                self.next_line += 1
                self.next_offset += length
            else:
                out.append((verdict, -1, -1, 0, cand))
        return out

    def line(self, offset: int, length: int) -> bytes:
        self.lines.seek(offset)
        return self.lines.read(length)

    def close(self) -> None:
        self.lines.close()
        self.meta.close()


class PartReplay:
    """The decide job's verdicts and outputs: every part's verdicts fed to the decider in corpus order (a
    source's ranges in plan order), and a note of where each kept part line goes, saved at the end. A
    context manager: leaving it closes the parts."""

    def __init__(self, params: CorpusParams) -> None:
        self.params = params
        self.path = decisions_path(params)
        self.readers: list[_PartReader] = []
        self.dest = [bytearray() for _ in range(params.parts.count)]  # per part line: split index or DROPPED
        self.where: dict[str, list[tuple[int, int]]] = {s: [] for s in SPLITS}  # split line -> part line
        self.current = (0, 0)  # the part line being decided
        self.loaded: set[tuple[int, int, int, int]] = set()

    def __enter__(self) -> PartReplay:
        try:
            for index in range(self.params.parts.count):
                self.readers.append(_PartReader(self.params, index))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for reader in self.readers:
            reader.close()

    def emit(self, split: str, line: bytes) -> None:
        part, part_line = self.current
        self.dest[part][part_line] = SPLITS.index(split)
        self.where[split].append(self.current)

    def documents(self, turn: SourceTurn) -> Iterator[tuple[Candidate, Cleaned]]:
        assert turn.ranges is not None
        position, units = turn.position, turn.opened.units is not None
        candidates = [] if units else list(turn.opened.candidates)  # a dataset's rows come from the parts
        for part, lo, hi in turn.ranges:
            self.loaded.add((position, part, lo, hi))
            segment = self.readers[part].load(position, lo, hi)
            end = len(candidates) if hi == -1 else hi
            listed = [s[4] for s in segment] if units else candidates[lo:end]
            for cand, (verdict, part_line, offset, length, _) in zip(listed, segment, strict=True):
                if part_line >= 0:
                    self.dest[part].extend(
                        DROPPED.to_bytes(1, signed=True) * (part_line + 1 - len(self.dest[part]))
                    )
                    verdict = verdict._replace(line=self.readers[part].line(offset, length))
                self.current = (part, part_line)
                yield cand, verdict

    def source_done(self, turn: SourceTurn) -> None:
        """A cap may have stopped the source early: step over its segments the decider never read."""
        assert turn.ranges is not None
        for part, lo, hi in turn.ranges:
            if (turn.position, part, lo, hi) not in self.loaded:
                self.readers[part].load(turn.position, lo, hi)

    def finish(self, moves: list[tuple[Kept, str]]) -> None:
        """Save where each part line goes, and the floor's moves as (part, part line, new split)."""
        moved = [(*self.where[item.split][item.line], SPLITS.index(target)) for item, target in moves]
        arrays = {f"part{i:05d}": np.frombuffer(bytes(d), dtype=np.int8) for i, d in enumerate(self.dest)}
        with atomic_open(self.path, "wb") as fh:
            np.savez(fh, moved=np.array(moved, dtype=np.int64).reshape(-1, 3), **arrays)


# --------------------------------------------------------------------------------------------- write
def write_split(params: CorpusParams, split: str) -> int:
    """Write ``split``'s file from the parts and the decisions; returns its number of records."""
    path = decisions_path(params)
    if not path.is_file():
        raise CorpusError(f"corpus decisions {path} are missing; run --job decide first")
    code = SPLITS.index(split)
    with np.load(path) as saved:
        dest = [saved[f"part{i:05d}"] for i in range(params.parts.count)]
        moved = saved["moved"]
    leaving = {(int(p), int(n)) for p, n, _ in moved}  # part lines the floor moves to another split
    arriving = [(int(p), int(n)) for p, n, t in moved if t == code]
    held: dict[tuple[int, int], bytes] = {}
    written = 0
    parts = [part_paths(params, part)[0] for part in range(params.parts.count)]
    with atomic_open(Path(params.out_dir) / f"{split}.jsonl", "wb") as out:
        for part, lines_path in enumerate(parts):
            with open(lines_path, "rb") as fh:
                for number, line in enumerate(fh):
                    if (part, number) in leaving:
                        held[part, number] = line
                    elif number < len(dest[part]) and dest[part][number] == code:
                        out.write(line)
                        written += 1
        for key in arriving:
            out.write(held[key])
            written += 1
    return written
