"""How a model decodes: the settings ``generate`` takes as flags and the completion metrics fix (greedy)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError

__all__ = ["DecodingParams"]


@dataclass
class DecodingParams(DataclassBase):
    """Decoding: how many tokens, greedy or sampled, and with which seed."""

    max_new_tokens: int = field(default=128, metadata={"help": "Most tokens to generate per prompt."})
    greedy: bool = field(
        default=False,
        metadata={"help": "Greedy decoding (always the most likely token); ignores sampling flags."},
    )
    temperature: float = field(
        default=0.8, metadata={"help": "Sampling temperature (0 = greedy); lower is more conservative."}
    )
    top_k: int = field(default=50, metadata={"help": "Sample among the k most likely tokens (0 = all)."})
    top_p: float = field(
        default=0.95, metadata={"help": "Nucleus sampling: the smallest set of tokens with this much mass."}
    )
    seed: int = field(default=0, metadata={"help": "Sampling seed: same seed, same output."})

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ConfigError(f"--max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ConfigError(f"--temperature must be 0 or more, got {self.temperature}")
        if self.top_k < 0:
            raise ConfigError(f"--top_k must be 0 or more, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"--top_p must be in (0, 1], got {self.top_p}")

    @property
    def sampling(self) -> bool:
        """Whether tokens are drawn (else the most likely one is taken)."""
        return not (self.greedy or self.temperature == 0)
