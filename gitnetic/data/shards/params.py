"""The preprocess stage's params, torch-free (``workflow/Snakefile`` reads them to plan shard jobs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from gitnetic.common.dataclass_argparse import DataclassBase

__all__ = ["PreprocessParams"]


@dataclass
class PreprocessParams(DataclassBase):
    """Which splits to binarize, how, and where to."""

    tokenizer_path: str = field(
        default="data/tokenizer",
        metadata={"help": "Tokenizer folder (or tokenizer.json) from the tokenizer stage."},
    )
    input_dir: str = field(
        default="data/corpus", metadata={"help": "Folder with the {split}.jsonl corpus splits."}
    )
    splits: list[str] = field(
        default_factory=lambda: ["train", "valid", "test"],
        metadata={"help": "Splits to binarize: reads INPUT_DIR/{split}.jsonl, writes OUTPUT_DIR/{split}.*"},
    )
    output_dir: str = field(default="data/bin", metadata={"help": "Folder for the {split}.bin/.idx shards."})
    input: str | None = field(
        default=None,
        metadata={"help": "Binarize this one JSONL file instead of --splits (needs --output_prefix)."},
    )
    output_prefix: str | None = field(
        default=None, metadata={"help": "Output prefix for --input: writes PREFIX.bin and PREFIX.idx."}
    )
    num_shards: int = field(
        default=1,
        metadata={
            "help": "Split each output into N shards PREFIX-0000i-of-0000N.{bin,idx} (contiguous byte ranges)."
        },
    )
    shard_index: int | None = field(
        default=None,
        metadata={"help": "Write only shard i of --num_shards (0-based): one job of a parallel fan-out."},
    )
    workers: int = field(default=0, metadata={"help": "Encoding threads; 0 = all CPUs this process may use."})
    batch_size: int = field(
        default=64, metadata={"help": "Documents per encode batch (a batch also closes at 4 MiB)."}
    )
    encoder: Literal["auto", "tiktoken", "hf"] = field(
        default="auto",
        metadata={
            "help": "auto: tiktoken when it reproduces the tokenizer's ids exactly, else HF encode_batch."
        },
    )
    dtype: Literal["auto", "uint16", "int32"] = field(
        default="auto",
        metadata={"help": "Token dtype of the .bin; auto = uint16 when the vocab fits, else int32."},
    )
    verify_every: int = field(
        default=256,
        metadata={
            "help": "Re-encode every N-th document with HF and compare (tiktoken only); a mismatch redoes the "
            "shard with HF. 0 disables."
        },
    )
    by_source: bool = field(
        default=False,
        metadata={
            "help": "Write one prefix per corpus source instead of one per split: OUTPUT_DIR/{split}-{source}"
            "[-0000i-of-0000N].{bin,idx} (with --input: OUTPUT_PREFIX-{source}), for blends such as "
            "'0.7 data/bin/train-code 0.3 data/bin/train-commits' and per-source evaluation. The source "
            "names are those of the corpus stage's stats.json (beside the JSONL files)."
        },
    )
    source_groups: list[str] = field(
        default_factory=list,
        metadata={
            "help": "With --by_source: write several sources under one prefix, one 'GROUP=SOURCE,SOURCE' "
            "per group (params.yaml: also a mapping GROUP: [SOURCE, ...]); a source in no group keeps a "
            "prefix of its own.",
            "mapping_ok": True,  # GROUP: [SOURCE, ...] in params.yaml (by_source_names reads both forms)
        },
    )
    repo_context: bool = field(
        default=False,
        metadata={
            "help": "Put a repository-level header before each document whose repository and path the corpus "
            "knows, in the tokenizer family's format: StarCoder2 '<repo_name>REPO<file_sep>PATH\\n', "
            "Qwen2.5-Coder '<|repo_name|>REPO\\n<|file_sep|>PATH\\n' (FIM training keeps it in front of "
            "the FIM layout). The repository is a record's 'repository' field, else the last folder name of "
            "a git source's path (docs/fim.md). A tokenizer without such tokens: a warning, and the shards "
            "are those written without this option."
        },
    )
