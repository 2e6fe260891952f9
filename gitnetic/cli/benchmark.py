"""``python -m gitnetic benchmark``: HumanEval-style pass@k of a model, its code run in a sandbox.

A thin shell over :func:`gitnetic.benchmark.run.benchmark` (which says what it writes).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser

DESCRIPTION = (
    "Functional correctness of a causal LM: sample --n_samples completions per HumanEval problem (or "
    "any JSONL in HumanEval's schema), save them as they are produced (a rerun resumes), run each with "
    "the problem's tests in a sandbox and report pass@k; --infill adds execution-checked infilling on "
    "OpenAI's HumanEval infilling sets (--infill_sets), comparable with published results. Running "
    "generated code needs --allow_code_execution."
)
PROG = "python -m gitnetic benchmark"

logger = logging.getLogger(__name__)


def build_parser() -> DataclassArgumentParser:
    from gitnetic.benchmark.params import BenchmarkParams, SandboxParams

    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(BenchmarkParams)
    parser.add_arguments(SandboxParams, title="sandbox parameters")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gitnetic.benchmark.run import benchmark

    params, sandbox, _ = build_parser().parse_args_into_dataclasses(argv)
    metrics = benchmark(params, sandbox)
    if not metrics:
        logger.info("benchmark: generations in %s", params.output_dir)
        return 0
    scores = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k.startswith("pass@")) or "no pass@k"
    logger.info(
        "benchmark: %s over %d problems x %d samples (%d timed out, sandbox: %s) -> %s",
        scores,
        metrics["scored_problems"],
        params.n_samples,
        metrics["timed_out"],
        metrics["sandbox"],
        params.metrics,
    )
    for name, infill in metrics.get("infill", {}).items():
        scores = ", ".join(f"{k} {v:.3f}" for k, v in infill.items() if k.startswith("pass@"))
        logger.info(
            "benchmark: %s infilling %s, exact match %.3f over %d of its %d tasks",
            name,
            scores or "no pass@k",
            infill["exact_match"],
            infill["tasks"],
            infill["set_tasks"],
        )
    return 0
