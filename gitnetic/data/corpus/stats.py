"""What a corpus run kept and dropped, per source and overall (``stats.json``), and its log summary.

Apart from the stage itself so that every way of running it (one process, N workers, N Snakemake jobs)
counts and reports through the same code, which is what makes their ``stats.json`` byte-identical.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gitnetic.data.corpus.filters import FILTER_REASONS
from gitnetic.data.corpus.sources.base import Candidate
from gitnetic.data.corpus.sources.dataset import DATASET_SKIPS, NO_LICENSE
from gitnetic.data.corpus.sources.git_history import HISTORY_SKIPS
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.splits import SPLITS

__all__ = ["SKIP_REASONS", "CorpusStats", "SourceStats", "human_bytes", "log_summary", "skipped_line"]

log = logging.getLogger(__name__)

SKIP_REASONS = ("binary", "non_utf8", "too_large", "duplicate", "near_duplicate", "empty", "unreadable")


def _zero(keys: tuple[str, ...]) -> dict[str, int]:
    return dict.fromkeys(keys, 0)


class _SplitTotals:
    """The totals over the splits of a stats class's ``documents`` and ``bytes`` (one split -> count)."""

    documents: dict[str, int]
    bytes: dict[str, int]

    @property
    def total_documents(self) -> int:
        return sum(self.documents.values())

    @property
    def total_bytes(self) -> int:
        return sum(self.bytes.values())


@dataclass
class SourceStats(_SplitTotals):
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
    licenses: dict[str, int] | None = None  # a dataset source's kept rows per license id (else absent)

    def start_dataset(self) -> None:
        """A dataset source's entry: its own drop reasons (zero until counted) and license counts."""
        self.skipped.update(dict.fromkeys(DATASET_SKIPS, 0))
        self.licenses = {}

    def count_licenses(self, cand: Candidate) -> None:
        """Count a kept dataset row's licenses (``NOASSERTION``: it lists none)."""
        assert self.licenses is not None
        expression = cand.fields.get("license")
        for license_id in expression.split(" AND ") if expression else [NO_LICENSE]:
            self.licenses[license_id] = self.licenses.get(license_id, 0) + 1

    def license_expression(self) -> str | None:
        """The ``AND`` of every kept row's licenses: what the source's kept code carries, as one SPDX-style
        expression (``stats.json`` -> ``licenses``, the exported ``licenses.json``); None: nothing kept."""
        return " AND ".join(sorted(self.licenses or {})) or None

    def to_dict(self) -> dict[str, Any]:
        out = dict(vars(self))
        out["documents"] = {**self.documents, "total": self.total_documents}
        out["bytes"] = {**self.bytes, "total": self.total_bytes}
        out["redacted"] = dict(sorted(self.redacted.items()))
        out["languages"] = dict(sorted(self.languages.items()))
        if self.licenses is None:
            del out["licenses"]  # sources other than datasets: stats.json as before
        else:
            out["licenses"] = dict(sorted(self.licenses.items()))
        return out


@dataclass
class CorpusStats(_SplitTotals):
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


def skipped_line(stats: CorpusStats) -> str:
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
    dataset_labels = {
        "opted_out": "opted out (exclude_repos)",
        "path_excluded": "left out by include/exclude",
        "other_language": "of other languages",
        "license_refused": "refused by licenses",
    }
    for key, label in dataset_labels.items():
        n = sum(s.skipped.get(key, 0) for s in stats.sources.values())
        if n:
            parts.append(f"{n} {label}")
    filtered = sum(sum(s.filtered.values()) for s in stats.sources.values())
    if filtered:
        parts.append(f"{filtered} dropped by quality filters")
    return ("skipped " + ", ".join(parts)) if parts else ""


def log_summary(stats: CorpusStats, sources: list[SourceParams], description: str) -> None:
    docs = stats.documents
    log.info(
        "corpus: %d documents, %s from %s -> %s (train %d / valid %d / test %d)",
        stats.total_documents,
        human_bytes(stats.total_bytes),
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
                getattr(sources[list(stats.sources).index(name)], src.stopped_by),
                src.files_not_collected,
                src.stopped_by,
            )


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"
