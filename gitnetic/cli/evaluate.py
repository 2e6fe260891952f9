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
    "Held-out token-weighted loss and perplexity of a checkpoint on a shard prefix (or, per prefix and "
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
    logger.info(
        "%s: loss %.4f, perplexity %.2f (unigram %.2f) over %d tokens -> %s",
        params.data_prefix,
        metrics["loss"],
        metrics["perplexity"],
        metrics["unigram_perplexity"],
        metrics["tokens"],
        params.output,
    )
    for prefix, scores in metrics.get("per_source", {}).items():
        if scores["tokens"]:
            logger.info(
                "  %s: loss %.4f, perplexity %.2f (unigram %.2f) over %d tokens",
                prefix,
                scores["loss"],
                scores["perplexity"],
                scores["unigram_perplexity"],
                scores["tokens"],
            )
    return 0
