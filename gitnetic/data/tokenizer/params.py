"""The tokenizer stage's params, torch- and tokenizers-free: what to train (:class:`TokenizerParams`) and
the stage's input and output (:class:`TokenizerStageParams`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.data.tokenizer.fim_tokens import FIM_TOKENS

__all__ = ["DEFAULT_MAX_SAMPLE_BYTES", "DEFAULT_SPECIAL_TOKENS", "TokenizerParams", "TokenizerStageParams"]

# RoBERTa's order, so <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4 as existing checkpoints expect.
DEFAULT_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
# Measured (bench/RESULTS.md, tokenizer_scale): BPE training time grows with the bytes it reads (about
# 0.45 CPU s/MB at vocab 16384), peak RSS with the distinct words (0.4-0.7 GB up to 234 MB). A 100 MB
# sample spread over a 234 MB split compressed held-out code as well as all of it (a 100 MB prefix did
# 2.4% worse), in about a minute of CPU.
DEFAULT_MAX_SAMPLE_BYTES = 100_000_000


@dataclass
class TokenizerParams(DataclassBase):
    """Byte-level BPE training parameters."""

    vocab_size: int = field(
        default=16384, metadata={"help": "Vocabulary size, special tokens and 256 bytes included."}
    )
    min_frequency: int = field(default=2, metadata={"help": "A merge must occur at least this often."})
    special_tokens: list[str] = field(
        default_factory=lambda: list(DEFAULT_SPECIAL_TOKENS),
        metadata={"help": "Special tokens, in id order: bos, pad, eos, unk, mask (roles are taken by name)."},
    )
    max_sample_bytes: int = field(
        default=DEFAULT_MAX_SAMPLE_BYTES,
        metadata={
            "help": "Bounds training time and memory on big corpora: a train split whose JSONL file is larger "
            "than this many bytes is sampled (documents drawn from the whole file, in file order, by a hash "
            "of --sample_seed and their line number; about this many bytes of text, reading stops at the "
            "document that reaches it); a smaller one is read whole. 0 = always all."
        },
    )
    sample_seed: int = field(
        default=0,
        metadata={"help": "Seed of the --max_sample_bytes sample: same split and seed, same tokenizer."},
    )
    model_max_length: int = field(
        default=1024, metadata={"help": "model_max_length saved with the tokenizer."}
    )
    fim_tokens: bool = field(
        default=False,
        metadata={
            "help": "Also add StarCoder's fill-in-the-middle tokens <fim_prefix> <fim_middle> <fim_suffix> "
            "<fim_pad> (after --special_tokens), needed to train with --fim_rate and to infill; literal "
            "occurrences in code stay ordinary text."
        },
    )

    def all_special_tokens(self) -> list[str]:
        """``special_tokens``, plus the FIM tokens when ``fim_tokens`` (each once, in id order)."""
        tokens = list(self.special_tokens)
        if self.fim_tokens:
            tokens += [t for t in FIM_TOKENS if t not in tokens]
        return tokens


@dataclass
class TokenizerStageParams(DataclassBase):
    """Input and output of the tokenizer stage."""

    train_file: str = field(
        default="data/corpus/train.jsonl",
        metadata={
            "help": "JSONL train split written by 'python -m gitnetic corpus' (one {\"text\": ...} per line)."
        },
    )
    out_dir: str = field(default="data/tokenizer", metadata={"help": "Folder to save the tokenizer to."})
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining: copy the tokenizer of this local HF model folder (e.g. an export) "
            "to --out_dir instead of training one; set the same folder as train's --init_from."
        },
    )
