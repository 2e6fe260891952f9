"""The corpus stage's params (``params.yaml: corpus``), at the bottom of the package so every module of
it takes the typed group it reads.

One nested group per concern, as ``params.yaml`` writes them and the flags spell them::

    corpus:
      sources: [...]                 # what to read (SourceParams entries), in order
      out_dir: data/corpus
      num_workers: 0
      filters: {enabled: true, max_line_length: 1000, ...}      --filters.max_line_length 2000
      redact: {secrets: true, emails: true}                     --redact.emails false
      neardup: {enabled: true, threshold: 0.85, ...}            --neardup.threshold 0.9
      decontaminate: {benchmarks: [humaneval], min_chars: 32}   --decontaminate.benchmarks
      splits: {valid_ratio: 0.05, test_ratio: 0.05, seed: 0}    --splits.seed 3
      parts: {count: 1}                                         --parts.count 4

The per-document groups (filters, redact, neardup, decontaminate) are what a cleaning worker receives,
as they are: they are picklable. The flat keys of earlier versions (``near_dedup_threshold``,
``valid_ratio``, ...) are one-line errors naming their new place (:data:`MOVED_KEYS`).

The single-source keys (``source``, ``path``, ``rev``, ``include``, ...) stay at the top: they are the
short form of the corpus' one ``sources`` entry, which reading the params turns them into (code reads
``params.sources`` only).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from gitnetic.common.dataclass_argparse import DataclassBase, fill_groups
from gitnetic.common.errors import ConfigError
from gitnetic.data.corpus.sources.params import STDLIB_EXCLUDES, SourceParams

__all__ = [
    "DEFAULT_SOURCE",
    "MOVED_KEYS",
    "SINGLE_SOURCE_KEYS",
    "CorpusJobParams",
    "CorpusParams",
    "DecontaminateParams",
    "FilterParams",
    "NearDupParams",
    "PartsParams",
    "RedactParams",
    "SplitParams",
]


@dataclass
class FilterParams(DataclassBase):
    """Quality filters: lock files, minified bundles, generated files and the line/alnum checks."""

    enabled: bool = field(
        default=True,
        metadata={"help": "Drop lock files, minified bundles and files failing the checks of this group."},
    )
    max_line_length: int = field(
        default=1000, metadata={"help": "Drop documents with a longer line; 0 = off."}
    )
    max_mean_line_length: float = field(
        default=100.0, metadata={"help": "Drop documents whose mean line length is above; 0 = off."}
    )
    min_alnum_fraction: float = field(
        default=0.25, metadata={"help": "Drop documents with fewer letters/digits per character; 0 = off."}
    )
    drop_generated: bool = field(
        default=True,
        metadata={
            "help": "Drop files whose first 5 lines say 'auto-generated', 'do not edit', '@generated', ..."
        },
    )


@dataclass
class RedactParams(DataclassBase):
    """What redaction replaces by placeholders (in sources with ``clean``)."""

    secrets: bool = field(
        default=True,
        metadata={
            "help": "Replace private keys, access keys, tokens and URL passwords with <KEY>/<PASSWORD>/..."
        },
    )
    emails: bool = field(default=True, metadata={"help": "Replace e-mail addresses with <EMAIL>."})


@dataclass
class NearDupParams(DataclassBase):
    """Near-duplicate removal: MinHash + LSH over word shingles proposes, exact Jaccard decides."""

    enabled: bool = field(default=True, metadata={"help": "Drop near-duplicates (first copy kept)."})
    threshold: float = field(
        default=0.85,
        metadata={
            "help": "Exact Jaccard similarity of word shingles at which a later copy is dropped (MinHash "
            "proposes candidates, an exact comparison decides)."
        },
    )
    ngram: int = field(default=5, metadata={"help": "Words per shingle."})
    num_perm: int = field(default=128, metadata={"help": "MinHash permutations."})
    library: Literal["rensa", "datasketch"] = field(
        default="rensa", metadata={"help": "MinHash/LSH library (bench/corpus.py compares them)."}
    )

    def __post_init__(self) -> None:
        if self.library not in ("rensa", "datasketch"):
            raise ConfigError(f"unknown neardup.library {self.library!r}; use rensa or datasketch")


@dataclass
class DecontaminateParams(DataclassBase):
    """Benchmark decontamination (every source): documents holding a problem's text are dropped."""

    benchmarks: list[str] = field(
        default_factory=lambda: ["humaneval"],
        metadata={
            "help": "Drop documents holding a benchmark problem's docstring or canonical solution "
            "(whitespace-normalised; gitnetic/data/corpus/decontaminate.py): 'humaneval' and/or JSONL problem "
            "files in HumanEval's schema; [] = off. Counted per benchmark in stats.json."
        },
    )
    min_chars: int = field(
        default=32, metadata={"help": "Ignore docstrings/solutions shorter than this (normalised)."}
    )


@dataclass
class SplitParams(DataclassBase):
    """How kept documents are split: a hash of ``seed`` and each document's path (or commit id)."""

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

    def __post_init__(self) -> None:
        for name in ("valid_ratio", "test_ratio"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"splits.{name} must be in [0, 1), got {value}")
        if self.valid_ratio + self.test_ratio >= 1.0:
            raise ConfigError(
                f"splits.valid_ratio + splits.test_ratio must be below 1 to leave files for train, got "
                f"{self.valid_ratio} + {self.test_ratio}"
            )


@dataclass
class PartsParams(DataclassBase):
    """Snakemake (and SLURM) only: the stage as many jobs (docs/corpus.md); DVC and the CLI ignore it."""

    count: int = field(
        default=1,
        metadata={
            "help": "The corpus stage fans out as this many 'sign' jobs over byte ranges of the file list, "
            "one 'decide' job and one 'write' job per split, with outputs byte-identical to one job."
        },
    )

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"parts.count must be >= 1, got {self.count}")


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
# The flat keys of earlier versions -> their place in the groups.
MOVED_KEYS = {
    "quality_filters": "filters.enabled",
    "max_line_length": "filters.max_line_length",
    "max_mean_line_length": "filters.max_mean_line_length",
    "min_alnum_fraction": "filters.min_alnum_fraction",
    "drop_generated": "filters.drop_generated",
    "redact_secrets": "redact.secrets",
    "redact_emails": "redact.emails",
    "near_dedup": "neardup.enabled",
    "near_dedup_threshold": "neardup.threshold",
    "near_dedup_ngram": "neardup.ngram",
    "near_dedup_num_perm": "neardup.num_perm",
    "near_dedup_library": "neardup.library",
    "decontaminate": "decontaminate.benchmarks",  # a list given for the group
    "decontaminate_min_chars": "decontaminate.min_chars",
    "valid_ratio": "splits.valid_ratio",
    "test_ratio": "splits.test_ratio",
    "seed": "splits.seed",
    "num_parts": "parts.count",
}
_SINGLE = (
    "Single-source form (edits the corpus' one source: the default stdlib one, or the one --sources entry): "
)


@dataclass
class CorpusParams(DataclassBase):
    """Where to read source files from, how to clean them, and how to split them."""

    MOVED_KEYS: ClassVar[dict[str, str]] = MOVED_KEYS
    PARAMS_NAME: ClassVar[str | None] = "corpus"

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
    sources: list[SourceParams] = field(
        default_factory=list,
        metadata={
            "help": "The named sources of one corpus, read in this order (params.yaml: a list of mappings; "
            "flag: one YAML mapping per source, e.g. '{name: code, type: dir, path: src}'). Keys per "
            "source: name, type (stdlib|dir|git|git-history|parquet|jsonl), path, rev, rev_range, max_commits, "
            "no_merges, max_diff_bytes, include, exclude, max_file_bytes, max_files, max_bytes, licenses, clean, "
            "record_source, fields, languages, exclude_repos "
            "(see docs/corpus.md). Unset: the one source the single-source keys describe (the stdlib "
            "without them). After reading, always the list of SourceParams to collect."
        },
    )
    out_dir: str = field(
        default="data/corpus",
        metadata={"help": "Output folder for train.jsonl, valid.jsonl, test.jsonl and stats.json."},
    )
    num_workers: int = field(
        default=0,
        metadata={
            "help": "Processes that read, filter, redact and sign documents in parallel (0 = every core this "
            "process may use; 1 = no worker processes). The output is byte-identical for every value: "
            "duplicates, caps and splits are decided in corpus order."
        },
    )
    filters: FilterParams = field(default_factory=FilterParams)
    redact: RedactParams = field(default_factory=RedactParams)
    neardup: NearDupParams = field(default_factory=NearDupParams)
    decontaminate: DecontaminateParams = field(default_factory=DecontaminateParams)
    splits: SplitParams = field(default_factory=SplitParams)
    parts: PartsParams = field(default_factory=PartsParams)

    def __post_init__(self) -> None:
        fill_groups(self)
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
        if self.num_workers < 0:
            raise ConfigError(f"num_workers must be >= 0 (0 = every core), got {self.num_workers}")


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


@dataclass
class CorpusJobParams(DataclassBase):
    """Which job of the corpus stage to run (the workflow engine sets these; see docs/corpus.md)."""

    job: Literal["all", "sign", "decide", "write"] = field(
        default="all",
        metadata={
            "help": "all: the whole stage in this process (the default; DVC, the CLI). Snakemake's fan-out "
            "over --parts.count: sign (one part, --part_index), decide (after every part), write (one "
            "split, --split, after decide)."
        },
    )
    part_index: int | None = field(
        default=None, metadata={"help": "--job sign: the part to sign, 0 .. parts.count-1."}
    )
    split: Literal["train", "valid", "test"] | None = field(
        default=None, metadata={"help": "--job write: the split file to write."}
    )
