"""The fast encoder must give exactly HF's ids: tiktoken vs HF on every document of a real stdlib sample."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import numpy as np
import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.data.shards.encoder import (
    HFEncoder,
    TiktokenEncoder,
    build_encoder,
    first_mismatch,
    tiktoken_ranks,
)
from gitnetic.data.tokenizer.load import load_tokenizer
from gitnetic.data.tokenizer.params import TokenizerParams
from gitnetic.data.tokenizer.train import train_tokenizer

# Source text that contains the tokenizer's own special-token strings, as real code does.
SPECIAL_TEXT = 'SEP = "</s>"\nBOS = "<s>"  # also <pad>, <unk> and <mask>\nhtml = "<s>x</s>"\n'


def _stdlib_sample(count: int = 150, max_bytes: int = 40_000) -> list[str]:
    """The first ``count`` smallish stdlib modules in path order: real, varied, reproducible Python code."""
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(root.rglob("*.py")):
        if {"site-packages", "test", "tests"} & set(path.relative_to(root).parts):
            continue
        try:
            data = path.read_bytes()
            text = data.decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if 0 < len(data) <= max_bytes:
            texts.append(text)
        if len(texts) == count:
            break
    return texts


@pytest.fixture(scope="module")
def stdlib_texts() -> list[str]:
    return _stdlib_sample()


@pytest.fixture(scope="module")
def bpe2k(tmp_path_factory: pytest.TempPathFactory, stdlib_texts: list[str]):
    """A real 2k byte-level BPE trained on the sample (the tokenizer stage's own training code)."""
    return train_tokenizer(stdlib_texts, tmp_path_factory.mktemp("bpe2k"), TokenizerParams(vocab_size=2000))


def test_tiktoken_equals_hf_on_every_stdlib_document(bpe2k, stdlib_texts: list[str]) -> None:
    fast = build_encoder(bpe2k, "auto", num_threads=2)
    assert isinstance(fast, TiktokenEncoder) and fast.vocab_size == len(bpe2k) == 2000
    hf = HFEncoder(bpe2k)
    texts = [*stdlib_texts, SPECIAL_TEXT]
    ours, theirs = fast.encode_batch(texts), hf.encode_batch(texts)
    assert sum(map(len, theirs)) > 100_000  # a realistic amount of code, not a toy string
    mismatched = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if not np.array_equal(a, b)]
    assert mismatched == []
    # and HF here is the tokenizer the model uses, minus splitting special tokens out of text
    direct = bpe2k(stdlib_texts[:20], add_special_tokens=False)["input_ids"]
    assert [list(map(int, a)) for a in theirs[:20]] == direct


def test_literal_special_tokens_stay_text(bpe2k) -> None:
    eos = bpe2k.convert_tokens_to_ids("</s>")
    specials = set(bpe2k.all_special_ids)
    default_hf = bpe2k(SPECIAL_TEXT, add_special_tokens=False)["input_ids"]
    assert eos in default_hf  # HF's default really would turn the literal "</s>" into the separator id
    for encoder in (build_encoder(bpe2k, "tiktoken"), build_encoder(bpe2k, "hf")):
        ids = encoder.encode(SPECIAL_TEXT)
        assert not specials & set(ids.tolist()), encoder.name
        assert bpe2k.decode(ids.tolist()) == SPECIAL_TEXT  # lossless, byte for byte
    # the caller's tokenizer is not changed by building encoders
    assert bpe2k(SPECIAL_TEXT, add_special_tokens=False)["input_ids"] == default_hf


def test_rank_conversion_is_id_order(bpe2k) -> None:
    ranks, why = tiktoken_ranks(bpe2k)
    assert why is None
    vocab = bpe2k.get_vocab()
    assert len(ranks) == len(vocab) - len(bpe2k.all_special_ids)
    assert ranks[b" "] == vocab["\u0120"] and ranks[b"\n"] == vocab["\u010a"]  # byte-level chars -> bytes
    assert sorted(ranks.values()) == sorted(v for k, v in vocab.items() if k not in bpe2k.all_special_tokens)


def test_unconvertible_tokenizer_falls_back_to_hf(tmp_path: Path, bpe2k) -> None:
    bpe2k.save_pretrained(tmp_path / "tok")
    tok = load_tokenizer(tmp_path / "tok")
    tok.add_tokens(["self.assert"])  # a non-special added token: HF matches it inside text, tiktoken cannot
    assert tiktoken_ranks(tok)[1] is not None
    encoder = build_encoder(tok, "auto")
    assert encoder.name == "hf"
    assert (
        encoder.encode("self.assertEqual(x)").tolist()
        == tok("self.assertEqual(x)", add_special_tokens=False)["input_ids"]
    )
    with pytest.raises(ConfigError, match="cannot use the tiktoken encoder.*non-special added tokens"):
        build_encoder(tok, "tiktoken")
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder(tok, "sentencepiece")  # type: ignore[arg-type]


def test_first_mismatch_reports_disagreement(bpe2k) -> None:
    hf = HFEncoder(bpe2k)

    class OffByOne(HFEncoder):
        def encode_batch(self, texts):
            return [a + (i == 1) for i, a in enumerate(super().encode_batch(texts))]

    assert first_mismatch(hf, hf, ["a", "b", "c"]) is None
    assert first_mismatch(OffByOne(bpe2k), hf, ["a = 1", "b = 2", "c = 3"]) == 1
