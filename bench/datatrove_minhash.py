"""Hugging Face datatrove's 4-stage MinHash dedup over JSONL shards, for the comparison in
``bench/corpus_scale.py`` (which times this script as a subprocess and samples its process tree's RSS).

A separate script because it runs in datatrove's own venv (``python -m venv --system-site-packages
/work/dtvenv && /work/dtvenv/bin/pip install datatrove spacy``), never the project's: the project venv
stays untouched and this file imports nothing from gitnetic.

Two configurations (``--config``):

* ``default``: ``MinhashConfig()`` as shipped (5-grams, 14 buckets x 8 hashes, lower-cased text without
  punctuation/number variation) and datatrove's English word tokenizer (spaCy ``blank("en")``).
* ``ours``: the settings closest to the corpus stage's near-dedup: 5-grams of ``\\w+`` words of the raw
  text (no normalisation), 128 hashes as 16 buckets x 8 (the stage's LSH bands at 0.85). datatrove has no
  threshold and no exact verification: a bucket collision alone makes a duplicate.

Writes ``--out`` (JSON): ``removed``, the ``path`` field of every document the filter stage removed, and
``stage_s``, the wall seconds of each of the four stages.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove.utils.text import TextNormConfig
from datatrove.utils.word_tokenizers import WordTokenizer

_WORD = re.compile(r"\w+")


class RegexWords(WordTokenizer):
    """The corpus stage's shingle words (``gitnetic.data.corpus.neardup.index.shingles``): ``\\w+`` runs."""

    def word_tokenize(self, text: str) -> list[str]:
        return _WORD.findall(text)

    def sent_tokenize(self, text: str) -> list[str]:
        return [text]

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _WORD.finditer(text)]


def configure(name: str) -> tuple[MinhashConfig, object]:
    """``(config, language or tokenizer)`` of one named configuration."""
    if name == "default":
        return MinhashConfig(), "eng"
    off = TextNormConfig(
        lowercase=False,
        norm_whitespace=False,
        remove_punctuation=False,
        norm_unicode_diacritics=False,
        norm_numbers=False,
    )
    return MinhashConfig(n_grams=5, num_buckets=16, hashes_per_bucket=8, norm_config=off), RegexWords()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", required=True, help="folder of JSONL shards (text + path per line)")
    parser.add_argument("--work", required=True, help="empty scratch folder for signatures, buckets, logs")
    parser.add_argument("--config", choices=["default", "ours"], default="default")
    parser.add_argument("--tasks", type=int, required=True, help="tasks of the signature and filter stages")
    parser.add_argument("--workers", type=int, required=True, help="processes at once in every stage")
    parser.add_argument("--out", required=True, help="JSON file for the removed documents' paths")
    args = parser.parse_args()

    work = Path(args.work)
    config, language = configure(args.config)
    removed = work / "removed"

    def reader() -> JsonlReader:
        return JsonlReader(args.input, glob_pattern="*.jsonl", add_file_path=False)

    def stage(name: str, steps: list, tasks: int) -> tuple[str, LocalPipelineExecutor]:
        logs = str(work / "logs" / name)
        return name, LocalPipelineExecutor(steps, tasks=tasks, workers=args.workers, logging_dir=logs)

    # Run one after the other (as `depends=` would), each timed on its own: the stages' shares of the wall
    # time, start-up of the worker pools included.
    stages = [
        stage(
            "signatures", [reader(), MinhashDedupSignature(str(work / "sigs"), config, language)], args.tasks
        ),
        stage(
            "buckets",
            [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)],
            config.num_buckets,
        ),
        stage(
            "cluster",
            [MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)],
            1,
        ),
        stage(
            "filter",
            [
                reader(),
                MinhashDedupFilter(str(work / "remove_ids"), JsonlWriter(str(removed), compression=None)),
            ],
            args.tasks,
        ),
    ]
    seconds = {}
    for name, executor in stages:
        t0 = time.perf_counter()
        executor.run()
        seconds[name] = round(time.perf_counter() - t0, 2)

    paths = []
    for part in sorted(removed.glob("*.jsonl")):
        with open(part, encoding="utf-8") as fh:
            paths.extend(json.loads(line)["metadata"]["path"] for line in fh)
    Path(args.out).write_text(json.dumps({"removed": paths, "stage_s": seconds}))


if __name__ == "__main__":
    main()
