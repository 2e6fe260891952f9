"""Stage 1: collect source files (and commits) into ``{train,valid,test}.jsonl`` documents.

Design choices, and why:

* **Many sources, one corpus.** ``sources`` lists named sources (``stdlib``, ``dir``, ``git``,
  ``git-history``; see :mod:`gitnetic.data.corpus.sources`), read in the order listed. The single-source keys
  (``source``, ``path``, ``rev``, ``include``, ...) of earlier versions still work: reading the params
  turns them into the one ``sources`` entry (:data:`DEFAULT_SOURCE`, or the one listed entry, edited by
  them), which writes exactly what they always wrote. Code reads ``params.sources`` only (the params,
  nested groups per concern, are :mod:`gitnetic.data.corpus.params`).
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

from dataclasses import dataclass
from pathlib import Path

from gitnetic.common.errors import ConfigError
from gitnetic.data.corpus.loop import run_stage
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.corpus.parts import write_split
from gitnetic.data.corpus.sources import open_source
from gitnetic.data.corpus.stats import CorpusStats

__all__ = ["SourceScan", "collect_corpus", "run_corpus", "scan_source"]


def run_corpus(params: CorpusParams, job: CorpusJobParams | None = None) -> str:
    """The stage's entry (``python -m gitnetic corpus``): the whole stage here, or one job of its
    fan-out (:mod:`gitnetic.data.corpus.parts`); returns a one-line summary for the console."""
    job = job or CorpusJobParams()
    count = params.parts.count
    if job.job == "write":  # the only job that reads no source: it copies the parts the decisions route
        if job.split is None:
            raise ConfigError("--job write needs --split train|valid|test")
        n = write_split(params, job.split)
        return f"wrote {n} documents to {Path(params.out_dir) / (job.split + '.jsonl')}"
    stats = run_stage(params, job)
    if job.job == "sign":
        return f"signed {stats.files_matched} candidates of part {job.part_index} of {count}"
    if job.job == "decide":
        return f"decided {stats.total_documents} documents over {count} parts"
    docs = stats.documents
    return (
        f"wrote {stats.total_documents} documents to {stats.out_dir} "
        f"(train {docs['train']}, valid {docs['valid']}, test {docs['test']})"
    )


def collect_corpus(params: CorpusParams) -> CorpusStats:
    """Collect, filter, redact, de-duplicate and split documents into ``params.out_dir`` in this process
    (and its cleaning workers); see the module doc."""
    return run_stage(params, CorpusJobParams())


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
