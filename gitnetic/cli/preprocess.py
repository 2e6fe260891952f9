"""``python -m gitnetic preprocess``: stage 3, corpus JSONL splits -> MMIDIDX ``.bin``/``.idx`` shards.

A thin shell over :mod:`gitnetic.data.shards.binarize` (which says why the binarizer is built the way it is).
"""

from __future__ import annotations

from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.data.shards.binarize import preprocess
from gitnetic.data.shards.params import PreprocessParams

DESCRIPTION = (
    'Tokenize corpus splits (INPUT_DIR/{split}.jsonl, one {"text": ...} per line) with the trained tokenizer, '
    "append </s> after every document, and write memory-mapped MMIDIDX shards OUTPUT_DIR/{split}.{bin,idx} "
    "(the fairseq/Megatron-LM/GPT-NeoX indexed-dataset format; uint16 ids for vocabularies up to 65,535). "
    "--num_shards N writes {split}-0000i-of-0000N.{bin,idx} instead; --shard_index i writes only shard i, "
    "so N jobs can binarize one split in parallel. Literal '</s>'/'<s>' strings in source text stay text."
)


def build_parser() -> DataclassArgumentParser:

    parser = DataclassArgumentParser(prog="python -m gitnetic preprocess", description=DESCRIPTION)
    parser.add_arguments(PreprocessParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:

    params, _ = build_parser().parse_args_into_dataclasses(argv)
    stats = preprocess(params)
    tokens = sum(s.tokens for s in stats)
    secs = sum(s.seconds for s in stats)
    print(
        f"preprocess: {sum(s.documents for s in stats)} documents, {tokens:,} tokens in {secs:.1f}s "
        f"({tokens / max(secs, 1e-9) / 1e6:.2f} Mtok/s)"
    )
    return 0
