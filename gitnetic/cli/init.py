"""``python -m gitnetic init``: write params.yaml sized to your corpus and compute budget, print the plan."""

from __future__ import annotations

from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.pipeline.init_project import init_project
from gitnetic.pipeline.params import InitParams

DESCRIPTION = (
    "Size a pipeline run to a corpus (a folder, a git repository at --rev, or the stdlib) and a compute "
    "budget (--budget_minutes of this CPU or --gpu_hours): scans file sizes, picks the vocabulary, a GPT-2 "
    "shape, tokens, batch and steps by the rule of docs/sizing.md (Chinchilla: ~20 tokens per parameter, "
    "capped by the budget and by 4 passes over the data), prints the plan and writes params.yaml (every "
    "section of the template, planned values filled in) and the model config. Then run "
    "'bash scripts/pipeline.sh'. With --from MODEL_DIR it plans a fine-tune of that model instead: full or "
    "LoRA, gradient checkpointing, batch and steps sized to --gpu_memory_gb and the budget, with an "
    "estimate of peak GPU memory. Never overwrites a file without --force."
)


def build_parser() -> DataclassArgumentParser:

    parser = DataclassArgumentParser(prog="python -m gitnetic init", description=DESCRIPTION)
    parser.add_arguments(InitParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:

    params, _ = build_parser().parse_args_into_dataclasses(argv)
    result = init_project(params)
    print(f"plan for {result.description}:")
    print(result.summary)
    if result.written:
        print(f"wrote {' and '.join(result.written)}; next: bash scripts/pipeline.sh")
    else:
        print("dry run: nothing written")
    return 0
