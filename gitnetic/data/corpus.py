"""Stage 1: collect source files (and commits) into ``{train,valid,test}.jsonl`` documents.

Design choices, and why:

* **Many sources, one corpus.** ``sources`` lists named sources (``stdlib``, ``dir``, ``git``,
  ``git-history``; see :mod:`gitnetic.data.sources`), read in the order listed. The single-source keys
  (``source``, ``path``, ``rev``, ``include``, ...) of earlier versions still work: reading the params
  turns them into the one ``sources`` entry (:data:`DEFAULT_SOURCE`, or the one listed entry, edited by
  them), which writes exactly what they always wrote. Code reads ``params.sources`` only.
* **Streaming.** Documents are read one at a time and each record is written as soon as it is accepted;
  only 16-byte content digests (exact de-duplication), near-duplicate signatures of kept documents (see
  :mod:`gitnetic.data.neardup` for the bound) and the candidate paths of one source stay in memory.
* **Deterministic.** Sources in listed order, candidates in sorted path (or commit) order, so "first
  seen wins" de-duplication and the ``max_files``/``max_bytes`` caps give the same result on every run.
  A document's split is a hash of ``seed`` and its relative path (or commit id) only, so adding or
  removing other files never moves it between splits (no train/test leakage across corpus versions).
  The one exception is the small-corpus floor of ``gitnetic.data.splits``: a split with a non-zero
  ratio that the hash left empty takes one document.
* **Clean before split.** Quality filters (:mod:`gitnetic.data.filters`), secret/e-mail redaction
  (:mod:`gitnetic.data.redact`), exact and near-duplicate removal all run before a split is assigned,
  so the same code never lands in both train and test. Every drop is counted per source and reason.
* **Lossless otherwise.** Text is decoded as strict UTF-8 and written unchanged (CRLF, tabs, BOM and
  all) apart from redaction placeholders: the byte-level tokenizer reproduces it byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, NamedTuple

from tqdm.auto import tqdm

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.common.io import atomic_open, atomic_open_group, remove_stale_temporaries
from gitnetic.data.filters import FILTER_REASONS, QualityFilter, is_lock_file
from gitnetic.data.globs import compile_globs
from gitnetic.data.jsonl import iter_jsonl, iter_jsonl_texts
from gitnetic.data.licenses import source_licenses
from gitnetic.data.neardup import NearDuplicateIndex
from gitnetic.data.redact import Redactor
from gitnetic.data.sources import SourceParams, open_source
from gitnetic.data.sources.git_history import HISTORY_SKIPS
from gitnetic.data.sources.stdlib import STDLIB_EXCLUDES
from gitnetic.data.splits import SPLITS, assign_split, assign_splits, required_splits

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
    "compile_globs",
    "iter_jsonl",
    "iter_jsonl_texts",
    "scan_source",
]

log = logging.getLogger(__name__)

BINARY_SNIFF_BYTES = 8192
SKIP_REASONS = ("binary", "non_utf8", "too_large", "duplicate", "near_duplicate", "empty", "unreadable")


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
            "(whitespace-normalised; gitnetic/data/decontaminate.py): 'humaneval' and/or JSONL problem "
            "files in HumanEval's schema; [] = off. Counted per benchmark in stats.json."
        },
    )
    decontaminate_min_chars: int = field(
        default=32,
        metadata={"help": "Decontamination: ignore docstrings/solutions shorter than this (normalised)."},
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


def _zero(keys: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


@dataclass
class SourceStats:
    """Per-source counts (``stats.json`` -> ``sources.<name>``)."""

    type: str
    label: str
    commit: str | None = None  # the resolved commit of a git / git-history source
    documents: dict[str, int] = field(default_factory=lambda: _zero(SPLITS))
    bytes: dict[str, int] = field(default_factory=lambda: _zero(SPLITS))
    skipped: dict[str, int] = field(default_factory=lambda: _zero(SKIP_REASONS))
    filtered: dict[str, int] = field(default_factory=lambda: _zero(FILTER_REASONS))
    redacted: dict[str, int] = field(default_factory=dict)
    languages: dict[str, int] = field(default_factory=dict)
    files_matched: int = 0
    files_not_collected: int = 0
    stopped_by: str | None = None

    @property
    def total_documents(self) -> int:
        return sum(self.documents.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["documents"] = {**self.documents, "total": self.total_documents}
        out["bytes"] = {**self.bytes, "total": self.total_bytes}
        out["redacted"] = dict(sorted(self.redacted.items()))
        out["languages"] = dict(sorted(self.languages.items()))
        return out


@dataclass
class CorpusStats:
    """What :func:`collect_corpus` kept and skipped, overall and per source; written to ``stats.json``."""

    source: str
    out_dir: str
    documents: dict[str, int] = field(default_factory=lambda: _zero(SPLITS))
    bytes: dict[str, int] = field(default_factory=lambda: _zero(SPLITS))
    skipped: dict[str, int] = field(default_factory=lambda: _zero(SKIP_REASONS))
    files_matched: int = 0
    files_not_collected: int = 0
    stopped_by: str | None = None
    sources: dict[str, SourceStats] = field(default_factory=dict)
    licenses: dict[str, str | None] = field(default_factory=dict)  # source name -> SPDX expression
    decontaminated: dict[str, int] = field(default_factory=dict)  # documents dropped per benchmark

    @property
    def total_documents(self) -> int:
        return sum(self.documents.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())

    def _sum(self, attr: str) -> dict[str, int]:
        total: Counter[str] = Counter()
        for src in self.sources.values():
            total.update(getattr(src, attr))
        return dict(sorted(total.items()))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "out_dir": self.out_dir,
            "documents": {**self.documents, "total": self.total_documents},
            "bytes": {**self.bytes, "total": self.total_bytes},
            "skipped": self.skipped,
            "filtered": {k: sum(s.filtered[k] for s in self.sources.values()) for k in FILTER_REASONS},
            "redacted": self._sum("redacted"),
            "languages": self._sum("languages"),
            "files_matched": self.files_matched,
            "files_not_collected": self.files_not_collected,
            "stopped_by": self.stopped_by,
            "decontaminated": dict(self.decontaminated),
            "sources": {name: src.to_dict() for name, src in self.sources.items()},
            "licenses": self.licenses,
        }


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
class _Kept(NamedTuple):
    path: str  # the split key: relative path or commit id
    split: str
    line: int  # index of its record in that split's file
    size: int
    source: str


class _Cleaner:
    """Filters, redaction and de-duplication shared by all sources of one corpus run (in that order)."""

    def __init__(self, params: CorpusParams) -> None:
        self.quality = (
            QualityFilter(
                params.max_line_length,
                params.max_mean_line_length,
                params.min_alnum_fraction,
                params.drop_generated,
            )
            if params.quality_filters
            else None
        )
        self.redactor = None
        if params.redact_secrets or params.redact_emails:
            self.redactor = Redactor(secrets=params.redact_secrets, emails=params.redact_emails)
        self.near = None
        if params.near_dedup:
            spill_dir = Path(params.out_dir)  # the kept texts for exact verification, beside the outputs
            spill_dir.mkdir(parents=True, exist_ok=True)
            self.near = NearDuplicateIndex(
                params.near_dedup_threshold,
                params.near_dedup_ngram,
                params.near_dedup_num_perm,
                params.near_dedup_library,
                spill_dir=str(spill_dir),
            )
        self.decontaminator = None
        if params.decontaminate:
            from gitnetic.data.decontaminate import Decontaminator

            self.decontaminator = Decontaminator(list(params.decontaminate), params.decontaminate_min_chars)
        self.seen: set[bytes] = set()
        self.lines = dict.fromkeys(SPLITS, 0)  # records written per split file so far
        self.index_near = True  # False when no source left to read is cleaned: signatures would go unused


def collect_corpus(params: CorpusParams) -> CorpusStats:
    """Collect, filter, redact, de-duplicate and split documents into ``params.out_dir`` (see module doc)."""
    out_dir = Path(params.out_dir)
    sources = params.sources
    # licenses first: a source its allow-list refuses stops the stage before anything is written
    licenses = dict(source_licenses(sources))
    cleaner = _Cleaner(params)
    stats = CorpusStats(source="", out_dir=str(out_dir), licenses=licenses)
    kept: list[_Kept] = []  # small per-document facts for the small-corpus split floor
    # The splits and stats.json replace the previous ones as one group (stats.json, written last, marks
    # a complete set): a run killed at any point never leaves a new split beside an old one.
    remove_stale_temporaries(out_dir / "stats.json")
    with atomic_open_group(
        [out_dir / f"{split}.jsonl" for split in SPLITS],
        "w",
        invalidate=[out_dir / "stats.json"],
        encoding="utf-8",
        newline="\n",
    ) as handles:
        writers = dict(zip(SPLITS, handles, strict=True))
        descriptions, labels = [], []  # labels: each source's records' 'source' field
        for position, spec in enumerate(sources):
            cleaner.index_near = any(s.clean for s in sources[position:])
            drop_path = is_lock_file if params.quality_filters and spec.clean else None
            with open_source(spec, drop_path) as opened:
                src = SourceStats(type=spec.type, label=opened.label, commit=opened.commit)
                stats.sources[spec.name] = src
                descriptions.append(opened.description)
                labels.append(opened.label if spec.record_source == "origin" else spec.name)
                _collect_source(
                    kept,
                    spec,
                    opened,
                    src,
                    cleaner,
                    writers,
                    params,
                    label=labels[-1],
                )
                for key, n in opened.skipped.items():
                    src.skipped[key] = n
        stats.source = ",".join(labels)
        for src in stats.sources.values():
            for split in SPLITS:
                stats.documents[split] += src.documents[split]
                stats.bytes[split] += src.bytes[split]
            for key in SKIP_REASONS:
                stats.skipped[key] += src.skipped[key]
            stats.files_matched += src.files_matched
            stats.files_not_collected += src.files_not_collected
            stats.stopped_by = stats.stopped_by or src.stopped_by
        if cleaner.decontaminator is not None:
            stats.decontaminated = dict(cleaner.decontaminator.dropped)
        if cleaner.near is not None:
            cleaner.near.close()
        _check_not_empty(stats, params, "; ".join(descriptions))
        _fill_empty_splits(kept, writers, stats, params)
    with atomic_open(out_dir / "stats.json", "w", encoding="utf-8") as fh:
        json.dump(stats.to_dict(), fh, indent=2)
        fh.write("\n")
    _log_summary(stats, params, "; ".join(descriptions))
    return stats


def _collect_source(
    kept: list[_Kept],
    spec: SourceParams,
    opened: Any,
    src: SourceStats,
    cleaner: _Cleaner,
    writers: dict[str, Any],
    params: CorpusParams,
    label: str,
) -> None:
    # Longer than 60 lines on purpose: the loop body is the corpus stage's decision list, one check per
    # drop reason in the order docs/corpus.md specifies, each counting its reason and moving on. Split
    # into helpers, the order (which decides what a document is counted as) would no longer read as one.
    total = opened.count
    src.files_matched = total or 0
    bar = tqdm(
        opened.candidates, total=total, desc=f"corpus {spec.name}", unit="doc", disable=None, file=sys.stderr
    )
    index = 0
    with bar:
        for index, cand in enumerate(bar):  # noqa: B007 (index is read after the loop)
            if spec.max_files and src.total_documents >= spec.max_files:
                src.stopped_by = "max_files"
                break
            if spec.max_file_bytes and cand.size > spec.max_file_bytes:
                src.skipped["too_large"] += 1
                continue
            try:
                data = cand.read()
            except OSError:  # permissions, or the file vanished since the walk
                src.skipped["unreadable"] += 1
                continue
            if b"\0" in data[:BINARY_SNIFF_BYTES]:
                src.skipped["binary"] += 1
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                src.skipped["non_utf8"] += 1
                continue
            if not text.strip():
                src.skipped["empty"] += 1
                continue
            if cleaner.quality is not None and spec.clean:
                reason = cleaner.quality.reason(text, cand.fields.get("path"))
                if reason:
                    src.filtered[reason] += 1
                    continue
            if cleaner.decontaminator is not None and cleaner.decontaminator.contaminated(text):
                continue  # a benchmark's text, in every source (counted per benchmark)
            redacted: dict[str, int] = {}
            if cleaner.redactor is not None and spec.clean:
                text, redacted = cleaner.redactor.redact(text)
                if redacted:
                    data = text.encode("utf-8")
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in cleaner.seen:
                src.skipped["duplicate"] += 1
                continue
            signed = None
            if cleaner.near is not None and cleaner.index_near:
                match, signed = cleaner.near.find(text)
                if match is not None and spec.clean:
                    src.skipped["near_duplicate"] += 1
                    continue
            if spec.max_bytes and src.total_bytes + len(data) > spec.max_bytes:
                src.stopped_by = "max_bytes"
                break
            cleaner.seen.add(digest)
            if signed is not None:
                cleaner.near.add(signed)
            for kind, n in redacted.items():
                src.redacted[kind] = src.redacted.get(kind, 0) + n
            split = assign_split(cand.key, params.valid_ratio, params.test_ratio, params.seed)
            record = {"text": text, **cand.fields, "source": label, "lang": cand.lang}
            writers[split].write(json.dumps(record, ensure_ascii=False) + "\n")
            line = cleaner.lines[split]
            cleaner.lines[split] += 1
            kept.append(_Kept(cand.key, split, line, len(data), spec.name))
            src.documents[split] += 1
            src.bytes[split] += len(data)
            src.languages[cand.lang] = src.languages.get(cand.lang, 0) + 1
    if src.stopped_by and total is not None:
        src.files_not_collected = total - index


def _check_not_empty(stats: CorpusStats, params: CorpusParams, description: str) -> None:
    """Raise before the outputs are committed, so a bad run never leaves empty splits behind."""
    if stats.total_documents == 0:
        why = _skipped_line(stats) or f"{stats.files_matched} files matched"
        where = (
            f"with include {params.sources[0].include} and exclude {params.sources[0].exclude}"
            if len(params.sources) == 1
            else "with the include/exclude of each source"
        )
        raise CorpusError(
            f"no documents collected from {description} {where} ({why}); check --path/--include/--exclude"
        )


def _fill_empty_splits(
    kept: list[_Kept], writers: dict[str, IO[str]], stats: CorpusStats, params: CorpusParams
) -> None:
    """Move documents so that no split with a non-zero ratio is empty (see ``gitnetic.data.splits``).

    Runs only when the path hash left a required split empty, i.e. on small corpora: the donor split's
    (still uncommitted) file is rewritten without the moved records, keeping everything else in order.
    With several sources the floor holds per source too (for each source with enough documents), so
    ``preprocess --by_source`` gives every source a non-empty valid/test prefix that a blend can name.
    """
    final = _floored_splits(kept, stats, params)
    moves = {(k.split, k.line): (k, new) for k, new in zip(kept, final, strict=True) if new != k.split}
    if not moves:
        return
    moved_lines: list[tuple[str, str, str, _Kept]] = []  # (path, target split, JSON line, document)
    for donor in sorted({split for split, _ in moves}):
        fh = writers[donor]
        fh.flush()
        with tempfile.TemporaryFile("w+", encoding="utf-8", newline="\n") as copy:
            with open(fh.name, encoding="utf-8", newline="\n") as src:
                shutil.copyfileobj(src, copy)
            copy.seek(0)
            fh.seek(0)
            fh.truncate()
            for index, line in enumerate(copy):
                if (donor, index) in moves:
                    item, target = moves[donor, index]
                    moved_lines.append((item.path, target, line, item))
                else:
                    fh.write(line)
    for path, target, line, item in sorted(moved_lines):
        writers[target].write(line)
        for counts in (stats, stats.sources[item.source]):
            counts.documents[item.split] -= 1
            counts.bytes[item.split] -= item.size
            counts.documents[target] += 1
            counts.bytes[target] += item.size
        ratio = getattr(params, f"{target}_ratio", None)
        log.info(
            "corpus: the path hash put no file into %s (%s of %d files); moved %s from %s so it has one",
            target,
            f"{target}_ratio {ratio:g}" if ratio is not None else "train",
            len(kept),
            path if len(stats.sources) == 1 else f"{path} ({item.source})",
            item.split,
        )


def _floored_splits(kept: list[_Kept], stats: CorpusStats, params: CorpusParams) -> list[str]:
    """Each kept document's split after the small-corpus floor: per source first (several sources),
    then corpus-wide if a required split is still empty."""
    needed = required_splits(params.valid_ratio, params.test_ratio)
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
            idx, assign_splits(paths, params.valid_ratio, params.test_ratio, params.seed), strict=True
        ):
            final[i] = new
    if not all(any(f == s for f in final) for s in needed):  # no source could give one: the corpus-wide floor
        try:
            final = assign_splits([k.path for k in kept], params.valid_ratio, params.test_ratio, params.seed)
        except CorpusError as exc:
            raise CorpusError(f"{exc}, or set the ratio of a split you do not need to 0") from None
    return final


def _skipped_line(stats: CorpusStats) -> str:
    labels = {
        "binary": "binary",
        "non_utf8": "not UTF-8",
        "too_large": "larger than max_file_bytes",
        "duplicate": "duplicates",
        "near_duplicate": "near-duplicates",
        "empty": "empty",
        "unreadable": "unreadable",
    }
    parts = [f"{n} {labels[k]}" for k, n in stats.skipped.items() if n]
    filtered = sum(sum(s.filtered.values()) for s in stats.sources.values())
    if filtered:
        parts.append(f"{filtered} dropped by quality filters")
    return ("skipped " + ", ".join(parts)) if parts else ""


def _log_summary(stats: CorpusStats, params: CorpusParams, description: str) -> None:
    docs = stats.documents
    log.info(
        "corpus: %d documents, %s from %s -> %s (train %d / valid %d / test %d)",
        stats.total_documents,
        _human_bytes(stats.total_bytes),
        description,
        stats.out_dir,
        docs["train"],
        docs["valid"],
        docs["test"],
    )
    for bench, n in stats.decontaminated.items():
        log.info("corpus: dropped %d document(s) holding %s problem text (decontamination)", n, bench)
    for name, src in stats.sources.items():
        prefix = "corpus: " if len(stats.sources) == 1 else f"corpus: [{name}] "
        log.info("%slicense %s", prefix, stats.licenses.get(name) or "not detected")
        for key, n in src.skipped.items():
            if n:
                log.info(
                    "%sskipped %d %s %s",
                    prefix,
                    n,
                    key.replace("_", "-"),
                    "item(s)" if key in HISTORY_SKIPS else "file(s)",
                )
        for key, n in src.filtered.items():
            if n:
                log.info("%sdropped %d file(s) by the %s filter", prefix, n, key.replace("_", "-"))
        for key, n in src.redacted.items():
            log.info("%sredacted %d %s", prefix, n, key.replace("_", " "))
        if src.stopped_by:
            log.info(
                "%sstopped at %s=%d; %d matching item(s) not collected (raise %s, 0 = no limit)",
                prefix,
                src.stopped_by,
                getattr(params.sources[list(stats.sources).index(name)], src.stopped_by),
                src.files_not_collected,
                src.stopped_by,
            )


def _human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
