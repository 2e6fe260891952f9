"""``python -m gitnetic export``: turn a training checkpoint into a ``from_pretrained``-ready folder.

A thin shell over :func:`gitnetic.inference.export.export` (which says what the folder holds).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.inference.params import ExportParams

DESCRIPTION = (
    "Convert a training checkpoint into a from_pretrained-ready Hugging Face folder (model + tokenizer)."
)
PROG = "python -m gitnetic export"

logger = logging.getLogger(__name__)


def build_parser() -> DataclassArgumentParser:
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(ExportParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    params, _ = build_parser().parse_args_into_dataclasses(argv)
    # here, after parsing: it loads torch and transformers, which --help and flag errors need not wait for
    from gitnetic.inference.export import export

    info = export(params)
    logger.info("exported %s (step %s) to %s", info["model_class"], info["global_step"], params.output_dir)
    return 0
