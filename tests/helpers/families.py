"""Tiny pretrained-style model folders of the code-model families gitnetic fine-tunes.

Each is a randomly initialised model (hidden 32, 2 layers) saved with ``save_pretrained`` next to a
matching tokenizer: a real BPE trained here with ``tokenizers`` on a little Python, carrying that
family's special tokens at that family's places (StarCoder's first, CodeLlama's after the vocabulary,
DeepSeek's hole before begin and end, ...). What the tests of FIM formats, LoRA, memory planning and
before/after evaluation need from "a StarCoder2 / Qwen2.5-Coder / CodeLlama / DeepSeek-Coder", without
downloading one. Building one takes well under a second; :func:`family_folder` builds each once per
test session (shared by xdist workers): treat the folder as read-only, copy it to change it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.session_cache import built_once

# A little code with every character the tests encode (the Metaspace tokenizer has no byte fallback).
TEXT = '''def add(a, b):
    """Return the sum of a and b."""
    return a + b


class Counter:
    def __init__(self, start=0):
        self.value = start

    def step(self, by=1):
        self.value += by
        return self.value


def area(r):
    return 3.14159 * r * r


for i in range(10):
    print(i, add(i, 2), area(i))
x = [1, 2, 3]
y = {"k": (x, None, True, False)}
if x and not y or x != y:
    z = x[0] - x[-1] / 2 % 7 ** 2
'''


@dataclass(frozen=True)
class Family:
    """A tiny stand-in for one pretrained family: its architecture and tokenizer layout."""

    arch: str  # transformers model class
    head: tuple[str, ...]  # special tokens at ids 0.. (before the vocabulary)
    tail: tuple[str, ...] = ()  # special tokens after the vocabulary
    bos: str | None = None
    eos: str = "<|endoftext|>"
    unk: str | None = None
    sentencepiece: bool = False  # Llama-style "▁" word marks instead of byte-level BPE
    config: dict[str, Any] = field(default_factory=dict)


_STARCODER = ("<|endoftext|>", "<fim_prefix>", "<fim_middle>", "<fim_suffix>", "<fim_pad>")

FAMILIES: dict[str, Family] = {
    # GPT-2 with StarCoder's FIM names (what gitnetic's own FIM tokenizers hold, + StarCoder's order)
    "gpt2": Family("GPT2LMHeadModel", _STARCODER, bos="<|endoftext|>"),
    "starcoder2": Family(
        "Starcoder2ForCausalLM",
        (*_STARCODER, "<repo_name>", "<file_sep>", "<issue_start>", "<issue_comment>", "<issue_closed>"),
        bos="<|endoftext|>",
    ),
    "santacoder": Family(
        "GPTBigCodeForCausalLM",
        ("<|endoftext|>", "<fim-prefix>", "<fim-middle>", "<fim-suffix>", "<fim-pad>"),
    ),
    "qwen2.5-coder": Family(
        "Qwen2ForCausalLM",
        ("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        tail=(
            "<|fim_prefix|>",
            "<|fim_middle|>",
            "<|fim_suffix|>",
            "<|fim_pad|>",
            "<|repo_name|>",
            "<|file_sep|>",
        ),
    ),
    "codegemma": Family(
        "GemmaForCausalLM",
        ("<pad>", "<eos>", "<bos>", "<unk>"),
        tail=("<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|file_separator|>"),
        bos="<bos>",
        eos="<eos>",
        unk="<unk>",
        config={"head_dim": 16},
    ),
    "deepseek-coder": Family(
        "LlamaForCausalLM",
        ("<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>"),
        tail=("<｜fim▁hole｜>", "<｜fim▁begin｜>", "<｜fim▁end｜>"),  # DeepSeek's own order of the three
        bos="<｜begin▁of▁sentence｜>",
        eos="<｜end▁of▁sentence｜>",
    ),
    "codellama": Family(
        "LlamaForCausalLM",
        ("<unk>", "<s>", "</s>"),
        tail=("▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"),
        bos="<s>",
        eos="</s>",
        unk="<unk>",
        sentencepiece=True,
    ),
}

# No FIM tokens of any family: for the "unknown format" errors.
PLAIN = Family("GPT2LMHeadModel", ("<|endoftext|>",), bos="<|endoftext|>")

VOCAB = 320


def build_tokenizer(family: Family) -> Any:
    """A ``PreTrainedTokenizerFast`` laid out like ``family``'s."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if family.sentencepiece:
        backend = Tokenizer(models.BPE(unk_token=family.unk))
        backend.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex("\n"), "isolated"),
                pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first"),
            ]
        )
        backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
        alphabet: list[str] = []
    else:
        backend = Tokenizer(models.BPE())
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB, special_tokens=list(family.head), initial_alphabet=alphabet, show_progress=False
    )
    backend.train_from_iterator([TEXT] * 4, trainer)
    backend.add_special_tokens(list(family.tail))
    special = {"bos_token": family.bos, "eos_token": family.eos, "unk_token": family.unk}
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        clean_up_tokenization_spaces=False,
        **{k: v for k, v in special.items() if v is not None},
    )


def build_model(family: Family, tokenizer: Any) -> Any:
    """A randomly initialised ``family.arch``: hidden 32, 2 layers, 64 positions, the tokenizer's size."""
    import torch
    import transformers

    model_class = getattr(transformers, family.arch)
    shape: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if family.arch == "GPT2LMHeadModel" or family.arch == "GPTBigCodeForCausalLM":
        shape.update(n_embd=32, n_layer=2, n_head=2, n_positions=64)
    else:
        shape.update(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            max_position_embeddings=64,
        )
    shape.update(family.config)
    torch.manual_seed(0)
    return model_class(model_class.config_class(**shape))


def build_family(name: str, folder: Path) -> Path:
    """Save the tiny model and tokenizer of family ``name`` (or ``"plain"``: no FIM tokens) to ``folder``."""
    family = PLAIN if name == "plain" else FAMILIES[name]
    tokenizer = build_tokenizer(family)
    build_model(family, tokenizer).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def family_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """The saved tiny model folder of family ``name``, built once per session (read-only: copy it)."""
    return built_once(tmp_path_factory, f"family-{name}", lambda folder: build_family(name, folder))
