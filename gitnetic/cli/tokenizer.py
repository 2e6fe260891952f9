"""``python -m gitnetic tokenizer``: stage 2, train split -> byte-level BPE tokenizer folder.

A thin shell over :func:`gitnetic.data.tokenizer.train.tokenizer_stage`: parse, train (or copy), print.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.data.tokenizer.params import TokenizerParams, TokenizerStageParams
from gitnetic.data.tokenizer.train import TokenizerStageResult, tokenizer_stage

DESCRIPTION = (
    "Train a lossless byte-level BPE tokenizer on the corpus train split (streamed; a split larger than "
    "--max_sample_bytes is sampled reproducibly from the whole file with --sample_seed) and save a folder "
    "that transformers.AutoTokenizer.from_pretrained loads offline, with <s>=0, <pad>=1, </s>=2, <unk>=3, "
    "<mask>=4. Ends with what training cost: the bytes read, wall time and peak RSS."
)

log = logging.getLogger(__name__)


def build_parser() -> DataclassArgumentParser:

    parser = DataclassArgumentParser(prog="python -m gitnetic tokenizer", description=DESCRIPTION)
    parser.add_arguments(TokenizerStageParams)
    parser.add_arguments(TokenizerParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:

    stage, params, _ = build_parser().parse_args_into_dataclasses(argv)
    result = tokenizer_stage(stage, params)
    tokenizer = result.tokenizer
    if result.copied_from:
        print(
            f"copied the tokenizer of {result.copied_from} (vocab size {len(tokenizer)}, eos "
            f"{tokenizer.eos_token!r}) to {result.out_dir}; no tokenizer was trained"
        )
        return 0
    ids = [tokenizer.convert_tokens_to_ids(t) for t in params.all_special_tokens()]
    print(
        f"trained tokenizer: vocab size {len(tokenizer)} ({len(ids)} special tokens, ids {ids}) on "
        f"{result.documents} documents / {result.bytes:,} bytes of {result.train_file}; saved to {result.out_dir}"
    )
    if len(tokenizer) < params.vocab_size:
        print(
            f"note: asked for vocab_size {params.vocab_size} but the sample only supports {len(tokenizer)} "
            f"tokens (merges rarer than min_frequency {params.min_frequency} were not learned); add data"
        )
    sample = result.sample
    if sample and sample.tokens:
        print(
            f"compression: {sample.bytes / sample.tokens:.2f} bytes/token on the first {sample.documents} "
            "train documents"
        )
    if sample and sample.lossy:
        log.warning(
            "tokenizer: warning: %d of %d documents did not decode back exactly",
            sample.lossy,
            sample.documents,
        )
    log.info("tokenizer: %s", cost_line(result))
    return 0


def cost_line(result: TokenizerStageResult) -> str:
    """What training read (all of the train split or a sample of it), in how long, at what peak memory."""
    split = result.split
    mb = result.bytes / 1e6
    if split is not None and split.sampled:
        read = (
            f"a {mb:.1f} MB sample of {result.documents:,} documents ({split.rate:.1%} of the "
            f"{split.split_bytes / 1e6:.1f} MB train split, sample_seed {split.seed})"
        )
    else:
        read = f"all {result.documents:,} documents ({mb:.1f} MB) of the train split"
    return f"trained on {read} in {result.seconds:.1f} s, peak RSS {result.peak_rss / 1e6:,.0f} MB"
