"""The inference stages' params, apart from generation and export themselves, which load torch.

:class:`DecodingParams` (how a model decodes: the settings ``generate`` takes as flags and the completion
metrics fix, greedy), :class:`GenerateParams` (which model, which prompts, where) and
:class:`ExportParams`. Why a module of their own: ``python -m gitnetic generate --help`` (or export's)
and a mistyped flag are answered from these alone, in a fraction of a second instead of the seconds
torch takes to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.models.params import TrainedModelParams

__all__ = ["DEFAULT_CURSOR", "DecodingParams", "ExportParams", "GenerateParams"]

DEFAULT_CURSOR = "<CURSOR>"


@dataclass
class GenerateParams(DataclassBase):
    """Which model, which prompts, on which device (how to decode: :class:`DecodingParams`)."""

    model: str = field(
        metadata={
            "help": "An exported folder ('python -m gitnetic export', or any local HF causal-LM folder) "
            "or a training checkpoint (.ckpt, or its folder: checkpoint_last.ckpt there)."
        }
    )
    config_path: str | None = field(
        default=None, metadata={"help": "Model-config YAML used for training (checkpoints only)."}
    )
    tokenizer_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder used for training (checkpoints only)."}
    )
    prompt: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Prompt(s) to complete, each generated separately. Without any prompt "
            "option the prompt is read from stdin."
        },
    )
    prompt_file: str | None = field(
        default=None, metadata={"help": "A file whose whole content is one prompt ('-' = stdin)."}
    )
    prefix: str | None = field(
        default=None,
        metadata={"help": "Infill: the code before the cursor (with --suffix); prints the middle only."},
    )
    suffix: str | None = field(default=None, metadata={"help": "Infill: the code after the cursor."})
    infill_file: str | None = field(
        default=None,
        metadata={"help": "Infill: a file with one --cursor marker where the middle goes ('-' = stdin)."},
    )
    cursor: str = field(default=DEFAULT_CURSOR, metadata={"help": "The cursor marker of --infill_file."})
    repo_name: str | None = field(
        default=None,
        metadata={
            "help": "Infill: the repository's name, put before the prompt with the family's repository "
            "tokens (StarCoder2 <repo_name>, Qwen2.5-Coder <|repo_name|>; docs/fim.md)."
        },
    )
    file_path: str | None = field(
        default=None,
        metadata={
            "help": "Infill: the file's path in its repository, put before the prompt after the "
            "family's file separator (StarCoder2 <file_sep>, Qwen2.5-Coder <|file_sep|>)."
        },
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = field(
        default="auto", metadata={"help": "Where to run (auto: cuda when available, else cpu)."}
    )

    @property
    def infill(self) -> bool:
        return self.prefix is not None or self.suffix is not None or self.infill_file is not None


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


@dataclass
class ExportParams(TrainedModelParams):
    """Export: which checkpoint, how its model was built, where to write the folder."""

    output_dir: str = field(default="models/hf", metadata={"help": "Folder to write (replaced atomically)."})
    adapter_only: bool = field(
        default=False,
        metadata={
            "help": "For a LoRA run's checkpoint: write the adapter alone (peft's adapter_config.json + "
            "adapter_model.safetensors, for PeftModel.from_pretrained on the base model) instead of the "
            "base model with the adapter merged in."
        },
    )
    corpus_stats: str = field(
        default="data/corpus/stats.json",
        metadata={
            "help": "The corpus stage's stats.json; its per-source licenses are written to licenses.json in "
            "the folder (a missing file: an empty licenses.json, with one log line); the model card quotes "
            "its sources, licenses and statistics."
        },
    )
    eval_metrics: str = field(
        default="metrics/eval.json",
        metadata={"help": "evaluate's metrics JSON, quoted in the model card (left out when missing)."},
    )
    benchmark_metrics: str = field(
        default="metrics/benchmark.json",
        metadata={
            "help": "benchmark's metrics JSON (pass@k), in the card's model-index (left out when missing)."
        },
    )
