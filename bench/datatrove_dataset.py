"""datatrove on a Parquet code dataset in The Stack v1 schema, for ``bench/dataset_source.py`` (which
times this script as a subprocess and samples its process tree's RSS).

Runs in datatrove's own venv (``dataset_source.py`` makes it from ``pyproject.toml``'s ``bench`` extra),
never the project's: this file imports nothing from gitnetic.

Modes:

* ``copy``: ``ParquetReader`` -> ``JsonlWriter``, one task per file: the read -> write baseline. The
  reader's defaults (every column read, the others kept as each document's metadata); the writer's output
  uncompressed (its default is gzip), as the corpus stage writes its splits.
* ``minhash``: its 4-stage MinHash dedup on the same files (``bench/datatrove_minhash.py``'s ``ours``
  configuration by default: 5-grams of ``\\w+`` words of the raw text, 16 buckets x 8 hashes, the corpus
  stage's LSH bands at 0.85), the filter stage writing the kept documents as JSONL as the corpus stage
  writes its splits. Writes ``--out`` (JSON): ``removed``, ``repository/path`` of every document the
  filter removed, and ``stage_s``, the wall seconds of each stage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup.minhash import (
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.pipeline.readers import ParquetReader
from datatrove.pipeline.writers import JsonlWriter
from datatrove_minhash import configure  # this folder: the configurations corpus_scale.py compares

REPO_KEY, PATH_KEY = "max_stars_repo_name", "max_stars_repo_path"  # The Stack v1's columns


def reader(folder: str, metadata: bool = True) -> ParquetReader:
    return ParquetReader(
        folder, glob_pattern="**/*.parquet", text_key="content", id_key="hexsha", read_metadata=metadata
    )


def run(name: str, steps: list, tasks: int, workers: int, work: Path) -> float:
    executor = LocalPipelineExecutor(
        steps, tasks=tasks, workers=workers, logging_dir=str(work / "logs" / name)
    )
    t0 = time.perf_counter()
    executor.run()
    return round(time.perf_counter() - t0, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["copy", "minhash"])
    parser.add_argument("--input", required=True, help="folder of Parquet files (searched recursively)")
    parser.add_argument("--work", required=True, help="empty scratch folder: outputs, signatures, logs")
    parser.add_argument("--tasks", type=int, required=True, help="tasks of the reading stages (files)")
    parser.add_argument("--workers", type=int, required=True, help="processes at once in every stage")
    parser.add_argument("--config", choices=["default", "ours"], default="ours")
    parser.add_argument("--out", help="minhash: JSON file for the removed documents and stage times")
    parser.add_argument(
        "--text_only", action="store_true", help="copy: read only the content and id columns (no metadata)"
    )
    args = parser.parse_args()
    work = Path(args.work)

    if args.mode == "copy":
        seconds = run(
            "copy",
            [reader(args.input, not args.text_only), JsonlWriter(str(work / "out"), compression=None)],
            args.tasks,
            args.workers,
            work,
        )
        print(json.dumps({"stage_s": {"copy": seconds}}))
        return

    config, language = configure(args.config)
    removed = work / "removed"
    stages = [
        ("signatures", [reader(args.input), MinhashDedupSignature(str(work / "sigs"), config, language)], args.tasks),
        ("buckets", [MinhashDedupBuckets(str(work / "sigs"), str(work / "buckets"), config=config)], config.num_buckets),
        ("cluster", [MinhashDedupCluster(str(work / "buckets"), str(work / "remove_ids"), config=config)], 1),
        (
            "filter",
            [
                reader(args.input),
                MinhashDedupFilter(str(work / "remove_ids"), JsonlWriter(str(removed), compression=None)),
                JsonlWriter(str(work / "out"), compression=None),
            ],
            args.tasks,
        ),
    ]  # fmt: skip
    seconds = {name: run(name, steps, tasks, args.workers, work) for name, steps, tasks in stages}
    keys = []
    for part in sorted(removed.glob("*.jsonl")):
        with open(part, encoding="utf-8") as fh:
            for line in fh:
                meta = json.loads(line)["metadata"]
                keys.append(f"{meta[REPO_KEY]}/{meta[PATH_KEY]}")
    Path(args.out).write_text(json.dumps({"removed": keys, "stage_s": seconds}))


if __name__ == "__main__":
    main()
