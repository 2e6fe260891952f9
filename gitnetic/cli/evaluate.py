"""``python -m gitnetic evaluate``: held-out loss/perplexity of a checkpoint, next to a unigram baseline.

A thin shell over :func:`gitnetic.evaluation.evaluate.evaluate`: parse, score, write the JSON.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.io import atomic_open
from gitnetic.evaluation.params import EvaluateParams

DESCRIPTION = (
    "Held-out token-weighted loss, perplexity and bits per byte of a checkpoint (and, for a fine-tune, of "
    "the model it started from) on a shard prefix (or, per prefix and "
    "overall, on a blend of prefixes such as '0.8 data/bin/test-code 0.2 data/bin/test-commits'), "
    "written as JSON."
)
PROG = "python -m gitnetic evaluate"

logger = logging.getLogger(__name__)


def build_parser() -> DataclassArgumentParser:
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(EvaluateParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    params, _ = build_parser().parse_args_into_dataclasses(argv)
    # here, after parsing: it loads torch and Lightning, which --help and flag errors need not wait for
    from gitnetic.evaluation.evaluate import evaluate

    metrics = evaluate(params)
    with atomic_open(params.output) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    logger.info("%s: %s -> %s", params.data_prefix, _line(metrics), params.output)
    for prefix, scores in metrics.get("per_source", {}).items():
        if scores["tokens"]:
            logger.info("  %s: %s", prefix, _line(scores))
    if "base" in metrics:
        base = metrics["base"]
        logger.info(
            "  base %s -> tuned: loss %.4f -> %.4f, perplexity %.2f -> %.2f",
            base["model"],
            base["loss"],
            metrics["loss"],
            base["perplexity"],
            metrics["perplexity"],
        )
    return 0


def _line(scores: dict) -> str:
    text = f"loss {scores['loss']:.4f}, perplexity {scores['perplexity']:.2f} (unigram {scores['unigram_perplexity']:.2f})"
    if scores.get("bits_per_byte") is not None:
        text += f", {scores['bits_per_byte']:.4f} bits per byte"
    return text + f" over {scores['tokens']} tokens"
