"""``python -m gitnetic corpus``: stage 1, source files -> ``{train,valid,test}.jsonl`` + ``stats.json``."""

from __future__ import annotations

from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.corpus.stage import run_corpus

DESCRIPTION = (
    "Collect source files (this Python's standard library, a folder, or a git repository at a revision) "
    "into JSONL documents {text, path, source} split by a hash of the path into train/valid/test, "
    "skipping binary, non-UTF-8, oversized and duplicate files, filtering, redacting and near-deduplicating "
    "them in --num_workers processes. Writes OUT_DIR/{train,valid,test}.jsonl and OUT_DIR/stats.json."
)


def build_parser() -> DataclassArgumentParser:
    parser = DataclassArgumentParser(prog="python -m gitnetic corpus", description=DESCRIPTION)
    parser.add_arguments(CorpusParams)
    parser.add_arguments(CorpusJobParams, title="fan-out jobs (Snakemake, SLURM)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    params, job, _ = build_parser().parse_args_into_dataclasses(argv)
    print(run_corpus(params, job))
    return 0
