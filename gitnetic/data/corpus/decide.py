"""The corpus stage's decisions that depend on the documents before: duplicates, caps and splits.

Documents arrive here already cleaned and signed (:mod:`gitnetic.data.corpus.clean`, possibly by other
processes or jobs) and are decided strictly in corpus order: sources as listed, each source's candidates
in its stable order. "First seen wins" (exact and near duplicates) and the ``max_files``/``max_bytes``
caps are therefore the same however the cleaning was spread out, and so is every byte written.

Per kept document the state is its 16-byte digest, its near-dedup signature (see
:mod:`gitnetic.data.corpus.neardup.index`) and a :class:`Kept` entry for the small-corpus split floor; never its text.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple, Protocol

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.clean import KEPT, Cleaned
from gitnetic.data.corpus.neardup.index import NearDuplicateIndex
from gitnetic.data.corpus.params import CorpusParams, SplitParams
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.splits import SPLITS, assign_split, assign_splits, required_splits
from gitnetic.data.corpus.stats import CorpusStats, SourceStats, skipped_line
from gitnetic.data.corpus.turns import SourceTurn
from gitnetic.data.problems import problems_name

__all__ = [
    "Decider",
    "Kept",
    "Outputs",
    "check_not_empty",
    "floored_splits",
    "merge_counts",
    "moved_documents",
]

log = logging.getLogger(__name__)


class Outputs(Protocol):
    """Where the decisions go: the one-process stage's split files, or the fan-out decide job's notes of
    where each part line goes."""

    def emit(self, split: str, line: bytes) -> None:
        """A kept record line, in corpus order, and its split."""
        ...

    def finish(self, moves: list[tuple[Kept, str]]) -> None:
        """Apply the small-corpus floor's moves (kept document, new split), before the outputs commit."""
        ...


class Kept(NamedTuple):
    """A kept document, as the small-corpus floor needs it."""

    path: str  # the split key: relative path or commit id
    split: str
    line: int  # index of its record in that split's file
    size: int
    source: str


class Decider:
    """Exact and near-duplicate removal, caps and split assignment, shared by all sources of one run.

    ``outputs`` receives each kept record line in order (the one-process run writes it to the split's
    file, the fan-out's decide job only notes where it goes) and, at the end, the small-corpus floor's
    moves. A context manager: leaving it frees the near-duplicate index.
    """

    def __init__(self, params: CorpusParams, outputs: Outputs) -> None:
        self.splits = params.splits
        self.neardup = params.neardup
        self.spill_dir = Path(params.out_dir)  # kept shingle sets for exact verification, beside the outputs
        self.outputs = outputs
        self.emit = outputs.emit
        self.seen: set[bytes] = set()
        self.near: NearDuplicateIndex | None = None
        self.decontaminated = {problems_name(spec): 0 for spec in params.decontaminate.benchmarks}
        self.kept: list[Kept] = []
        self.lines = dict.fromkeys(SPLITS, 0)  # records emitted per split so far

    def __enter__(self) -> Decider:
        """Open the near-duplicate index (it spills beside the outputs, so only once they are open)."""
        neardup = self.neardup
        if neardup.enabled:
            self.spill_dir.mkdir(parents=True, exist_ok=True)
            self.near = NearDuplicateIndex(
                neardup.threshold,
                neardup.ngram,
                neardup.num_perm,
                neardup.library,
                spill_dir=str(self.spill_dir),
            )
        return self

    def __exit__(self, *exc: object) -> None:
        if self.near is not None:
            self.near.close()

    def take(self, turn: SourceTurn, documents: Iterable[tuple[Candidate, Cleaned]]) -> None:
        """Decide source ``turn``'s documents in order (those kept reach the outputs)."""
        self.decide_source(turn.spec, turn.stats, documents, turn.opened.count, turn.index_near)

    def finish(self, stats: CorpusStats, sources: list[SourceParams], description: str) -> None:
        """After the last source: the totals, the empty check (before anything commits) and the
        small-corpus floor's moves, which the outputs apply."""
        merge_counts(stats, self.decontaminated)
        check_not_empty(stats, sources, description)
        self.outputs.finish(moved_documents(self.kept, stats, self.splits))

    def decide_source(
        self,
        spec: SourceParams,
        src: SourceStats,
        documents: Iterable[tuple[Candidate, Cleaned]],
        total: int | None,
        index_near: bool,
    ) -> None:
        """Decide one source's documents in order. ``index_near``: some source from this one on is
        cleaned, so kept documents' signatures will be queried (else they are not indexed)."""
        # Longer than 60 lines on purpose: the loop body is the corpus stage's decision list, one check
        # per drop reason in the order docs/corpus.md specifies, each counting its reason and moving on.
        splits = self.splits
        src.files_matched = total or 0
        index = 0
        for index, (cand, done) in enumerate(documents):  # noqa: B007 (index is read after the loop)
            if spec.max_files and src.total_documents >= spec.max_files:
                src.stopped_by = "max_files"
                break
            if done.outcome != KEPT:
                kind, _, name = done.outcome.partition(":")
                if kind == "filtered":
                    src.filtered[name] += 1
                elif kind == "contaminated":
                    self.decontaminated[name] += 1
                else:
                    src.skipped[kind] += 1
                continue
            if done.digest in self.seen:
                src.skipped["duplicate"] += 1
                continue
            if self.near is not None and index_near:
                assert done.signed is not None
                if self.near.find(done.signed) is not None and spec.clean:
                    src.skipped["near_duplicate"] += 1
                    continue
            if spec.max_bytes and src.total_bytes + done.size > spec.max_bytes:
                src.stopped_by = "max_bytes"
                break
            self.seen.add(done.digest)
            if self.near is not None and done.signed is not None:
                self.near.add(done.signed)
            for kind, n in (done.redacted or {}).items():
                src.redacted[kind] = src.redacted.get(kind, 0) + n
            split = assign_split(cand.key, splits.valid_ratio, splits.test_ratio, splits.seed)
            self.emit(split, done.line)
            self.kept.append(Kept(cand.key, split, self.lines[split], done.size, spec.name))
            self.lines[split] += 1
            src.documents[split] += 1
            src.bytes[split] += done.size
            src.languages[cand.lang] = src.languages.get(cand.lang, 0) + 1
            if src.licenses is not None:
                src.count_licenses(cand)
        if src.stopped_by and total is not None:
            src.files_not_collected = total - index


def check_not_empty(stats: CorpusStats, sources: list[SourceParams], description: str) -> None:
    """Raise before the outputs are committed, so a bad run never leaves empty splits behind."""
    if stats.total_documents == 0:
        why = skipped_line(stats) or f"{stats.files_matched} files matched"
        where = (
            f"with include {sources[0].include} and exclude {sources[0].exclude}"
            if len(sources) == 1
            else "with the include/exclude of each source"
        )
        raise CorpusError(
            f"no documents collected from {description} {where} ({why}); check --path/--include/--exclude"
        )


def floored_splits(kept: list[Kept], stats: CorpusStats, splits: SplitParams) -> list[str]:
    """Each kept document's split after the small-corpus floor (see ``gitnetic.data.corpus.splits``): per
    source first (several sources), then corpus-wide if a required split is still empty."""
    needed = required_splits(splits.valid_ratio, splits.test_ratio)
    groups: list[list[int]] = []
    if len(stats.sources) > 1:
        by_source: dict[str, list[int]] = {}
        for i, k in enumerate(kept):
            by_source.setdefault(k.source, []).append(i)
        groups = [
            idx
            for name, idx in by_source.items()
            if len(idx) >= len(needed) and not all(stats.sources[name].documents[s] for s in needed)
        ]
    final = [k.split for k in kept]
    for idx in groups:
        paths = [kept[i].path for i in idx]
        for i, new in zip(
            idx, assign_splits(paths, splits.valid_ratio, splits.test_ratio, splits.seed), strict=True
        ):
            final[i] = new
    if not all(any(f == s for f in final) for s in needed):  # no source could give one: the corpus-wide floor
        try:
            final = assign_splits([k.path for k in kept], splits.valid_ratio, splits.test_ratio, splits.seed)
        except CorpusError as exc:
            raise CorpusError(f"{exc}, or set the ratio of a split you do not need to 0") from None
    return final


def moved_documents(kept: list[Kept], stats: CorpusStats, splits: SplitParams) -> list[tuple[Kept, str]]:
    """The documents the floor moves, with their new split, in the order they are appended to it; the
    counts in ``stats`` are updated (and each move is logged)."""
    final = floored_splits(kept, stats, splits)
    moves = sorted(
        (k.path, new, k.split, k.line, k) for k, new in zip(kept, final, strict=True) if new != k.split
    )
    out: list[tuple[Kept, str]] = []
    for path, target, _, _, item in moves:
        for counts in (stats, stats.sources[item.source]):
            counts.documents[item.split] -= 1
            counts.bytes[item.split] -= item.size
            counts.documents[target] += 1
            counts.bytes[target] += item.size
        ratio = getattr(splits, f"{target}_ratio", None)
        log.info(
            "corpus: the path hash put no file into %s (%s of %d files); moved %s from %s so it has one",
            target,
            f"{target}_ratio {ratio:g}" if ratio is not None else "train",
            len(kept),
            path if len(stats.sources) == 1 else f"{path} ({item.source})",
            item.split,
        )
        out.append((item, target))
    return out


def merge_counts(stats: CorpusStats, decontaminated: dict[str, int]) -> None:
    """Totals over the sources (after every source was decided)."""
    for src in stats.sources.values():
        for split in SPLITS:
            stats.documents[split] += src.documents[split]
            stats.bytes[split] += src.bytes[split]
        for key in stats.skipped:
            stats.skipped[key] += src.skipped[key]
        stats.files_matched += src.files_matched
        stats.files_not_collected += src.files_not_collected
        stats.stopped_by = stats.stopped_by or src.stopped_by
    stats.decontaminated = dict(decontaminated)
