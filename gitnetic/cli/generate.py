"""``python -m gitnetic generate``: complete or infill code with a trained model, streamed to stdout."""

from __future__ import annotations

import logging
import sys
from collections.abc import Sequence

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.inference.params import DecodingParams, GenerateParams

DESCRIPTION = (
    "Complete code with a trained causal LM (an exported folder or a training checkpoint), streaming the "
    "new tokens to stdout; with --prefix/--suffix or --infill_file, fill in the middle (FIM-trained "
    "models, docs/fim.md). Prompts come from --prompt, --prompt_file or stdin."
)
PROG = "python -m gitnetic generate"

logger = logging.getLogger(__name__)


def main(argv: Sequence[str] | None = None) -> int:
    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(GenerateParams)
    parser.add_arguments(DecodingParams)
    params, decoding, _ = parser.parse_args_into_dataclasses(argv)
    # here, after parsing: it loads torch and transformers, which --help and flag errors need not wait for
    from gitnetic.inference.generate import generate

    results = generate(params, decoding, out=sys.stdout)
    for r in results:
        rate = r.new_tokens / r.seconds if r.seconds > 0 else 0.0
        logger.info("generate: %d prompt + %d new tokens, %.1f tokens/s", r.prompt_tokens, r.new_tokens, rate)
    return 0
