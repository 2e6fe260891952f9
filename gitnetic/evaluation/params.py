"""The evaluate stage's params, checked when parsed, apart from scoring, which loads torch and Lightning;
with the completion metrics' bounds (:mod:`gitnetic.evaluation.completion` reads them too).

Why a module of their own: ``python -m gitnetic evaluate --help``, a mistyped flag and a bad number
are answered from these alone, in a fraction of a second instead of the seconds torch and Lightning
take to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gitnetic.common.errors import ConfigError
from gitnetic.models.params import TrainedModelParams

__all__ = ["MIN_CONTEXT", "MIN_LINE_TOKENS", "EvaluateParams", "check_completion_params"]

# Smallest prompt window: an infill prompt holds the generated line, three sentinels and some code.
# Smaller windows sample shorter lines (``line_tokens``), down to MIN_LINE_TOKENS.
MIN_LINE_TOKENS = 8
MIN_CONTEXT = 2 * (MIN_LINE_TOKENS + 1) + 3


def check_completion_params(samples: int, max_context: int) -> None:
    """Reject bad completion params up front (evaluate calls it before scoring perplexity)."""
    if samples < 0:
        raise ConfigError(f"--completion_samples must be 0 (off) or more, got {samples}")
    if max_context and max_context < MIN_CONTEXT:
        raise ConfigError(
            f"--completion_max_context must be 0 (the model's window) or at least {MIN_CONTEXT} "
            f"(room for a context and a {MIN_LINE_TOKENS}-token line on each side), got {max_context}"
        )


@dataclass
class EvaluateParams(TrainedModelParams):
    """Evaluation: which checkpoint, how it was built, which shards to score."""

    data_prefix: str = field(
        metadata={
            "help": "MMIDIDX shard prefix to score, e.g. data/bin/test; or several in the training blend form "
            "'0.8 data/bin/test-code 0.2 data/bin/test-commits': each is scored whole and reported under "
            "per_source, next to the token-weighted overall metrics (the weights do not enter)."
        }
    )
    output: str = field(
        default="metrics/eval.json", metadata={"help": "Where to write the metrics JSON (atomic)."}
    )
    train_prefix: str | None = field(
        default=None,
        metadata={
            "help": "Shard prefix for unigram counts (e.g. data/bin/train, or a blend whose prefixes' counts "
            "are summed); default: the scored shards themselves."
        },
    )
    max_length: int = field(
        default=0,
        metadata={
            "help": "Tokens per scored window (documents are split); 0 = what the model fits, at most 1024."
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Windows per forward pass (upper bound)."})
    max_tokens: int = field(
        default=0, metadata={"help": "Padded tokens per batch (0 = only --batch_size limits)."}
    )
    objective: Literal["auto", "clm", "mlm"] = field(
        default="auto", metadata={"help": "clm or mlm; auto reads the config/model class."}
    )
    mlm_probability: float = field(
        default=0.15, metadata={"help": "Fraction of tokens masked for mlm scoring."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the (fixed) mlm masking, so runs are comparable."}
    )
    max_documents: int = field(
        default=0, metadata={"help": "Score only the first N documents of each prefix (0 = all)."}
    )
    num_threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch (0 = as OMP_NUM_THREADS or the machine says); fix it for "
            "bit-identical metrics whichever engine runs the stage."
        },
    )
    base_model: str = field(
        default="auto",
        metadata={
            "help": "Before/after for a fine-tune: the model it started from is scored on the same tokens and "
            "written under 'base' (loss, perplexity, bits_per_byte). auto = the HF folder the checkpoint's "
            "run started from (train's --init_from, as the checkpoint records it; nothing for a model "
            "trained from scratch), none = skip, or an HF model folder."
        },
    )
    completion_samples: int = field(
        default=32,
        metadata={
            "help": "Held-out lines scored for next-line (and, with FIM tokens, infilling) exact match, "
            "greedy (0 = off; causal LMs only). See gitnetic/evaluation/completion.py."
        },
    )
    completion_seed: int = field(
        default=0, metadata={"help": "Seed that picks the completion lines (same seed, same lines)."}
    )
    completion_max_context: int = field(
        default=0,
        metadata={
            "help": "Most tokens a completion prompt holds, generated line included (0 = the model's "
            "window; at most that)."
        },
    )

    def __post_init__(self) -> None:
        # checked here, before evaluate() spends seconds loading the model
        if self.batch_size < 1 or self.max_tokens < 0:
            raise ConfigError("--batch_size must be positive and --max_tokens 0 or more")
        if self.num_threads < 0:
            raise ConfigError(
                f"--num_threads must be 0 (as the environment says) or more, got {self.num_threads}"
            )
        check_completion_params(self.completion_samples, self.completion_max_context)
