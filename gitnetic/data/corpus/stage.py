"""Stage 1: collect source files (and commits) into ``{train,valid,test}.jsonl`` documents.

Design choices, and why:

* **Many sources, one corpus.** ``sources`` lists named sources (``stdlib``, ``dir``, ``git``,
  ``git-history``; see :mod:`gitnetic.data.corpus.sources`), read in the order listed. The single-source keys
  (``source``, ``path``, ``rev``, ``include``, ...) of earlier versions still work: reading the params
  turns them into the one ``sources`` entry (:data:`DEFAULT_SOURCE`, or the one listed entry, edited by
  them), which writes exactly what they always wrote. Code reads ``params.sources`` only.
* **Streaming.** Documents are read one at a time and each record is written as soon as it is accepted;
  only 16-byte content digests (exact de-duplication), near-duplicate signatures of kept documents (see
  :mod:`gitnetic.data.corpus.neardup.index` for the bound) and the candidate paths of one source stay in memory.
* **Deterministic.** Sources in listed order, candidates in sorted path (or commit) order, so "first
  seen wins" de-duplication and the ``max_files``/``max_bytes`` caps give the same result on every run.
  A document's split is a hash of ``seed`` and its relative path (or commit id) only, so adding or
  removing other files never moves it between splits (no train/test leakage across corpus versions).
  The one exception is the small-corpus floor of ``gitnetic.data.corpus.splits``: a split with a non-zero
  ratio that the hash left empty takes one document.
* **Clean before split.** Quality filters (:mod:`gitnetic.data.corpus.filters`), secret/e-mail redaction
  (:mod:`gitnetic.data.corpus.redact.redactor`), exact and near-duplicate removal all run before a split is assigned,
  so the same code never lands in both train and test. Every drop is counted per source and reason.
* **Lossless otherwise.** Text is decoded as strict UTF-8 and written unchanged (CRLF, tabs, BOM and
  all) apart from redaction placeholders: the byte-level tokenizer reproduces it byte for byte.
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from tqdm.auto import tqdm

from gitnetic.common.cores import usable_cores
from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.common.io import atomic_open, atomic_open_group, remove_stale_temporaries
from gitnetic.common.ordered_pool import OrderedPool
from gitnetic.data.corpus.clean import CleanSettings, cleaned_documents, init_worker, worth_workers
from gitnetic.data.corpus.decide import (
    Decider,
    Kept,
    check_not_empty,
    merge_counts,
    moved_documents,
    source_turns,
)
from gitnetic.data.corpus.licenses import source_licenses
from gitnetic.data.corpus.sources import SourceParams, open_source
from gitnetic.data.corpus.sources.globs import compile_globs
from gitnetic.data.corpus.sources.stdlib import STDLIB_EXCLUDES
from gitnetic.data.corpus.splits import SPLITS, assign_split
from gitnetic.data.corpus.stats import CorpusStats, SourceStats, human_bytes, log_summary
from gitnetic.data.jsonl import iter_jsonl, iter_jsonl_texts

__all__ = [
    "DEFAULT_SOURCE",
    "SINGLE_SOURCE_KEYS",
    "SPLITS",
    "CorpusParams",
    "CorpusStats",
    "SourceParams",
    "SourceScan",
    "assign_split",
    "collect_corpus",
    "corpus_workers",
    "compile_globs",
    "iter_jsonl",
    "iter_jsonl_texts",
    "scan_source",
]

log = logging.getLogger(__name__)


# The single-source form (``source: dir``, ``path: ...``): these keys describe or edit the corpus' one
# source and are turned into its ``sources`` entry when params are read, so old params files and flags
# (also ``--max_files 5`` on params.yaml's one-entry ``sources``) keep working.
SINGLE_SOURCE_KEYS = (
    "source",
    "path",
    "rev",
    "include",
    "exclude",
    "max_file_bytes",
    "max_files",
    "max_bytes",
)
# The corpus when no source is given, and the entry the single-source keys edit: the stdlib demo,
# capped so that a bare ``python -m gitnetic corpus`` runs in minutes, its records labelled by origin
# (``stdlib:python3.11.7``) as the single-source form always wrote them. Every other default is
# ``SourceParams``'s.
DEFAULT_SOURCE = {"name": "stdlib", "type": "stdlib", "max_bytes": 8_000_000, "record_source": "origin"}
_SINGLE = (
    "Single-source form (edits the corpus' one source: the default stdlib one, or the one --sources entry): "
)


@dataclass
class CorpusParams(DataclassBase):
    """Where to read source files from, which ones to keep, and how to split them."""

    source: Literal["stdlib", "dir", "git"] | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "where documents come from: 'stdlib' (this Python's standard library, no "
            "download; the default), 'dir' (the directory --path) or 'git' (the repository --path at "
            "--rev, read without checkout). The entry is named after it."
        },
    )
    path: str | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "directory (source dir) or git repository (source git; a sub-folder of a work "
            "tree reads only that sub-tree).",
            "aliases": ["--repo"],
        },
    )
    rev: str | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "git revision to read (branch, tag or commit; default HEAD); source git."
        },
    )
    include: list[str] | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "glob patterns (relative to the source root, '**' crosses folders; a pattern "
            "without '/' matches the file name at any depth) a file must match (default '**/*.py')."
        },
    )
    exclude: list[str] | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "glob patterns (same syntax as --include) of files to leave out, e.g. "
            "'build/**'. Source stdlib always leaves out " + ", ".join(STDLIB_EXCLUDES) + "."
        },
    )
    max_file_bytes: int | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "skip files larger than this many bytes (generated code, data blobs; default "
            "1000000); 0 = no limit."
        },
    )
    max_files: int | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "stop after keeping this many documents (sorted path order); 0 = no limit."
        },
    )
    max_bytes: int | None = field(
        default=None,
        metadata={
            "help": _SINGLE + "stop before the kept documents exceed this many bytes in total (sorted path "
            "order; default 8000000, so the default stdlib pipeline runs in minutes); 0 = no limit."
        },
    )
    valid_ratio: float = field(
        default=0.05,
        metadata={
            "help": "Fraction of files (by path hash) in valid; when non-zero, valid gets at least one file "
            "whenever the corpus has enough for every split (3 with both ratios set)."
        },
    )
    test_ratio: float = field(
        default=0.05, metadata={"help": "Fraction of files (by path hash) in test; same floor as valid."}
    )
    seed: int = field(
        default=0, metadata={"help": "Salt of the path hash that assigns splits; change it to re-draw them."}
    )
    sources: list[SourceParams] = field(
        default_factory=list,
        metadata={
            "help": "The named sources of one corpus, read in this order (params.yaml: a list of mappings; "
            "flag: one YAML mapping per source, e.g. '{name: code, type: dir, path: src}'). Keys per "
            "source: name, type (stdlib|dir|git|git-history), path, rev, rev_range, max_commits, no_merges, "
            "max_diff_bytes, include, exclude, max_file_bytes, max_files, max_bytes, licenses, clean, record_source "
            "(see docs/corpus.md). Unset: the one source the single-source keys describe (the stdlib "
            "without them). After reading, always the list of SourceParams to collect."
        },
    )
    quality_filters: bool = field(
        default=True,
        metadata={"help": "Drop lock files, minified bundles and files failing the line/alnum checks below."},
    )
    max_line_length: int = field(
        default=1000, metadata={"help": "Quality filter: drop documents with a longer line; 0 = off."}
    )
    max_mean_line_length: float = field(
        default=100.0,
        metadata={"help": "Quality filter: drop documents whose mean line length is above; 0 = off."},
    )
    min_alnum_fraction: float = field(
        default=0.25,
        metadata={"help": "Quality filter: drop documents with fewer letters/digits per character; 0 = off."},
    )
    drop_generated: bool = field(
        default=True,
        metadata={
            "help": "Quality filter: drop files whose first 5 lines say 'auto-generated', 'do not edit', "
            "'@generated', ... (with --quality_filters)."
        },
    )
    redact_secrets: bool = field(
        default=True,
        metadata={
            "help": "Replace private keys, access keys, tokens and URL passwords with <KEY>/<PASSWORD>/..."
        },
    )
    redact_emails: bool = field(default=True, metadata={"help": "Replace e-mail addresses with <EMAIL>."})
    near_dedup: bool = field(
        default=True,
        metadata={"help": "Drop near-duplicates (MinHash + LSH over word n-grams), first copy kept."},
    )
    near_dedup_threshold: float = field(
        default=0.85,
        metadata={
            "help": "Near-dedup: exact Jaccard similarity of word shingles at which a later copy is "
            "dropped (MinHash proposes candidates, an exact comparison decides)."
        },
    )
    near_dedup_ngram: int = field(default=5, metadata={"help": "Near-dedup: words per shingle."})
    near_dedup_num_perm: int = field(default=128, metadata={"help": "Near-dedup: MinHash permutations."})
    near_dedup_library: Literal["rensa", "datasketch"] = field(
        default="rensa", metadata={"help": "Near-dedup: MinHash/LSH library (bench/corpus.py compares them)."}
    )
    decontaminate: list[str] = field(
        default_factory=lambda: ["humaneval"],
        metadata={
            "help": "Drop documents holding a benchmark problem's docstring or canonical solution "
            "(whitespace-normalised; gitnetic/data/corpus/decontaminate.py): 'humaneval' and/or JSONL problem "
            "files in HumanEval's schema; [] = off. Counted per benchmark in stats.json."
        },
    )
    decontaminate_min_chars: int = field(
        default=32,
        metadata={"help": "Decontamination: ignore docstrings/solutions shorter than this (normalised)."},
    )
    num_workers: int = field(
        default=0,
        metadata={
            "help": "Processes that read, filter, redact and sign documents in parallel (0 = every core this "
            "process may use; 1 = no worker processes). The output is byte-identical for every value: "
            "duplicates, caps and splits are decided in corpus order."
        },
    )
    num_parts: int = field(
        default=1,
        metadata={
            "help": "Snakemake (and SLURM) only: the corpus stage fans out as this many 'sign' jobs over "
            "byte ranges of the file list, one 'decide' job and one 'write' job per split, with outputs "
            "byte-identical to one job (docs/corpus.md). The one-process stage (DVC, the CLI) ignores it."
        },
    )
    out_dir: str = field(
        default="data/corpus",
        metadata={"help": "Output folder for train.jsonl, valid.jsonl, test.jsonl and stats.json."},
    )

    def __post_init__(self) -> None:
        given = {key: getattr(self, key) for key in SINGLE_SOURCE_KEYS if getattr(self, key) is not None}
        entries = [self.sources] if isinstance(self.sources, dict | str) else list(self.sources or [])
        listed = [SourceParams.parse(value, i) for i, value in enumerate(entries)]
        if given or not listed:
            listed = [_single_source(given, listed)]
        self.sources = listed  # the one description of what to read; nothing reads the keys above
        names = [s.name for s in self.sources]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ConfigError(f"corpus.sources: names must be unique, {dup} appear more than once")
        for name in ("valid_ratio", "test_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{name} must be in [0, 1), got {value}")
        if self.valid_ratio + self.test_ratio >= 1.0:
            raise ConfigError(
                f"valid_ratio + test_ratio must be below 1 to leave files for train, got "
                f"{self.valid_ratio} + {self.test_ratio}"
            )
        if self.num_workers < 0 or self.num_parts < 1:
            raise ConfigError(
                f"num_workers must be >= 0 (0 = every core) and num_parts >= 1, got {self.num_workers}, "
                f"{self.num_parts}"
            )
        if self.near_dedup_library not in ("rensa", "datasketch"):
            raise ConfigError(
                f"unknown near_dedup_library {self.near_dedup_library!r}; use rensa or datasketch"
            )


def _single_source(given: dict[str, Any], listed: list[SourceParams]) -> SourceParams:
    """The corpus' one source edited by the single-source keys ``given``: ``DEFAULT_SOURCE`` (``source``
    sets its type and name), or the one listed source, which they may edit but not replace."""
    if not listed:
        kind = given.get("source", DEFAULT_SOURCE["type"])
        keys = {key: value for key, value in given.items() if key != "source"}
        return SourceParams.parse({**DEFAULT_SOURCE, "name": kind, "type": kind, **keys}, 0)
    if len(listed) > 1:
        raise ConfigError(
            f"corpus: the single-source keys ({', '.join(given)}) edit the corpus' one source, but "
            f"'sources' lists {len(listed)}; not both: set them in the sources entries instead"
        )
    (one,) = listed
    if given.get("source", one.type) != one.type or given.get("path", one.path) != one.path:
        raise ConfigError(
            f"corpus: give either 'sources' (a list) or the single-source keys ({', '.join(given)}), not "
            "both; move them into a sources entry"
        )
    keys = {key: value for key, value in given.items() if key != "source"}
    return SourceParams.parse({**one.to_dict(), **keys}, 0)


# ---------------------------------------------------------------------------------------------- scan
@dataclass
class SourceScan:
    """What :func:`scan_source` found: a fast upper bound of what ``collect_corpus`` would keep."""

    description: str
    files: int
    bytes: int


def scan_source(params: CorpusParams) -> SourceScan:
    """Count the files and bytes the corpus stage would consider, from sizes only (nothing is read).

    Applies each source's ``include``/``exclude``, ``max_file_bytes``, ``max_files`` and ``max_bytes``
    in the same order as :func:`collect_corpus`; binary, non-UTF-8, empty, duplicate and filtered files
    are not detected (that needs reading them), so the counts are an upper bound used for sizing a run
    (``init``). A git-history source is counted by its commit documents (which are read).
    """
    descriptions, files, total = [], 0, 0
    for spec in params.sources:
        with open_source(spec) as opened:
            descriptions.append(opened.description)
            kept = size = 0
            for cand in opened.candidates:
                if spec.max_files and kept >= spec.max_files:
                    break
                if spec.max_file_bytes and cand.size > spec.max_file_bytes:
                    continue
                if cand.size == 0:
                    continue
                if spec.max_bytes and size + cand.size > spec.max_bytes:
                    break
                kept += 1
                size += cand.size
        files, total = files + kept, total + size
    return SourceScan(description="; ".join(descriptions), files=files, bytes=total)


# ------------------------------------------------------------------------------------------- collect
def corpus_workers(params: CorpusParams) -> int:
    """Worker processes to clean documents in: ``num_workers``, or every usable core when 0."""
    return params.num_workers or usable_cores()


def collect_corpus(params: CorpusParams) -> CorpusStats:
    """Collect, filter, redact, de-duplicate and split documents into ``params.out_dir`` (see module doc)."""
    out_dir = Path(params.out_dir)
    sources = params.sources
    # licenses first: a source its allow-list refuses stops the stage before anything is written
    licenses = dict(source_licenses(sources))
    stats = CorpusStats(source="", out_dir=str(out_dir), licenses=licenses)
    workers = corpus_workers(params)
    started = time.perf_counter()
    # The splits and stats.json replace the previous ones as one group (stats.json, written last, marks
    # a complete set): a run killed at any point (or a worker killed) never leaves a new split beside an
    # old one.
    remove_stale_temporaries(out_dir / "stats.json")
    with (
        atomic_open_group(
            [out_dir / f"{split}.jsonl" for split in SPLITS], "wb", invalidate=[out_dir / "stats.json"]
        ) as handles,
        OrderedPool(workers, init_worker, (CleanSettings.from_params(params),), what="corpus worker") as pool,
    ):
        writers = dict(zip(SPLITS, handles, strict=True))
        decider = Decider(params, lambda split, line: writers[split].write(line))
        progress = _Progress()
        descriptions: list[str] = []
        try:
            for turn in source_turns(params, stats, descriptions):
                spec, opened = turn.spec, turn.opened
                parallel = worth_workers(opened.candidates, spec, forced=params.num_workers > 1)
                if parallel:
                    pool.start()  # before the progress bar's thread: workers can be forked
                documents = cleaned_documents(
                    pool, opened.candidates, spec, turn.label, turn.index_near, parallel
                )
                with progress.bar(spec.name, opened.count, turn.stats) as tracked:
                    decider.decide_source(spec, turn.stats, tracked(documents), opened.count, turn.index_near)
        finally:
            decider.close()
        merge_counts(stats, decider.decontaminated)
        check_not_empty(stats, params, "; ".join(descriptions))
        _move_lines(moved_documents(decider.kept, stats, params), writers)
    with atomic_open(out_dir / "stats.json", "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh, indent=2)
        fh.write("\n")
    log_summary(stats, params, "; ".join(descriptions))
    log.info(
        "corpus: read %s in %.1f s (%s/s) with %d worker process%s",
        human_bytes(progress.read_bytes),
        time.perf_counter() - started,
        human_bytes(int(progress.read_bytes / max(time.perf_counter() - started, 1e-9))),
        workers,
        "" if workers == 1 else "es",
    )
    return stats


class _Progress:
    """The console bar of the long read-clean-decide loop: documents, MB read, MB/s and documents kept."""

    def __init__(self) -> None:
        self.read_bytes = 0
        self.started = time.perf_counter()

    @contextlib.contextmanager
    def bar(self, name: str, total: int | None, src: SourceStats) -> Iterator[Any]:
        bar = tqdm(total=total, desc=f"corpus {name}", unit="doc", disable=None, file=sys.stderr)

        def tracked(documents: Iterable[tuple[Any, Any]]) -> Iterator[tuple[Any, Any]]:
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


def _move_lines(moves: list[tuple[Kept, str]], writers: dict[str, Any]) -> None:
    """Apply the small-corpus floor to the (still uncommitted) split files: each donor file is rewritten
    without its moved records, which are appended to their new split in ``moves`` order."""
    if not moves:
        return
    moving = {(item.split, item.line): target for item, target in moves}
    lines: dict[tuple[str, int], bytes] = {}
    for donor in sorted({item.split for item, _ in moves}):
        fh = writers[donor]
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
        writers[target].write(lines[item.split, item.line])
