"""``python -m gitnetic summary``: the short end-of-pipeline report (perplexity vs baseline, paths, next steps)."""

from __future__ import annotations

from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.pipeline.params import SummaryParams
from gitnetic.pipeline.summary import pipeline_summary

DESCRIPTION = (
    "Summarise a pipeline run: held-out perplexity vs the unigram baseline, training throughput, where "
    "the model and metrics are, and how to compare experiments."
)
PROG = "python -m gitnetic summary"


def main(argv: Sequence[str] | None = None) -> int:
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(SummaryParams)
    params, _ = parser.parse_args_into_dataclasses(argv)
    print("\n".join(pipeline_summary(params)))
    return 0
