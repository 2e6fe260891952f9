"""FIM in each model family's own format: detection from the tokenizer, and the exact id layout of the
training sequences, read from the family tokenizer's own ids (tiny stand-ins: tests/helpers/families.py)."""

from __future__ import annotations

import numpy as np
import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.data.loading.fim import FimIds, apply_fim, fim_ids, fim_rng, permute
from gitnetic.data.shards.encoder import HFEncoder
from gitnetic.data.tokenizer.fim_tokens import (
    FIM_TOKENS,
    detect_fim_format,
    header_length,
    newline_mask,
    repo_context,
    split_context,
)
from gitnetic.data.tokenizer.load import load_tokenizer
from tests.helpers import write_shard
from tests.helpers.families import FAMILIES, family_folder

# Written out here, not read from gitnetic's table: (family, prefix, suffix, middle, end-of-middle,
# trains SPM too, prompts start with <s>), in the PSM order prefix P suffix S middle.
EXPECTED = {
    "gpt2": ("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", None, True, False),
    "starcoder2": ("starcoder", "<fim_prefix>", "<fim_suffix>", "<fim_middle>", None, True, False),
    "santacoder": ("santacoder", "<fim-prefix>", "<fim-suffix>", "<fim-middle>", None, True, False),
    "qwen2.5-coder": (
        "qwen2.5-coder",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        None,
        False,
        False,
    ),
    "codegemma": (
        "codegemma",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        "<|file_separator|>",
        True,
        True,
    ),
    "deepseek-coder": (
        "deepseek-coder",
        "<｜fim▁begin｜>",
        "<｜fim▁hole｜>",
        "<｜fim▁end｜>",
        None,
        False,
        True,
    ),
    "codellama": ("codellama", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>", True, True),
}


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    return {name: load_tokenizer(family_folder(tmp_path_factory, name)) for name in FAMILIES}


def test_every_fixture_family_is_covered() -> None:
    assert set(EXPECTED) == set(FAMILIES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_family_sequences_hold_its_ids_in_its_order(tokenizers, name: str) -> None:
    tok = tokenizers[name]
    family, p_tok, s_tok, m_tok, eot_tok, spm, bos = EXPECTED[name]
    p, s, m = tok.convert_tokens_to_ids([p_tok, s_tok, m_tok])
    eot = tok.convert_tokens_to_ids(eot_tok) if eot_tok else None
    ids = fim_ids(tok)
    assert ids is not None and ids.family == family
    assert (ids.prefix, ids.suffix, ids.middle, ids.eot) == (p, s, m, eot)
    assert ids.bos == (tok.bos_token_id if bos else None) and ids.spm == spm
    assert len({p, s, m, tok.eos_token_id}) == 4  # real, distinct ids

    doc = np.arange(1000, 1012)  # 12 content tokens, ids no special token has
    tail = [eot] if eot is not None else []
    keep = 12 - 3 - len(tail)  # the sentinels (and CodeLlama's ▁<EOT>) displace the last tokens
    body = list(range(1000, 1000 + keep))
    pre, mid, suf = body[:2], body[2:5], body[5:]
    assert permute(doc, ids, (2, 5), spm=False).tolist() == [p, *pre, s, *suf, m, *mid, *tail]
    assert permute(doc, ids, (2, 5), spm=True).tolist() == [p, s, *suf, m, *pre, *mid, *tail]

    # in samples: every long document FIM'd, the </s> after it kept; SPM only for families that train it
    eos = tok.eos_token_id
    docs = [np.append(np.arange(2000 + 100 * i, 2000 + 100 * i + 20 + i), eos) for i in range(30)]
    sample = np.concatenate(docs)
    psm = apply_fim(sample, fim_rng(3, 0), ids, eos, fim_rate=1.0, spm_rate=0.0)
    suffix_first = apply_fim(sample, fim_rng(3, 0), ids, eos, fim_rate=1.0, spm_rate=1.0)
    for out in (psm, suffix_first):
        assert (np.flatnonzero(out == eos) == np.flatnonzero(sample == eos)).all()
        for piece in np.split(out, np.flatnonzero(out == eos) + 1)[:-1]:
            assert piece[0] == p and piece[-1] == eos and (eot is None or piece[-2] == eot)
            assert sorted(t for t in piece.tolist() if t in (p, s, m)) == sorted([p, s, m])
            if out is suffix_first and spm:
                assert piece[1] == s
    # the same draws: spm_rate 1 changes every sample where the family trains SPM, none where it does not
    assert (suffix_first != psm).any() == spm


def test_gitnetic_tokenizer_keeps_starcoder_layout_byte_identical(fim_tokenizer) -> None:
    tok = load_tokenizer(fim_tokenizer)
    ids = fim_ids(tok)
    assert ids == FimIds(prefix=5, middle=6, suffix=7, pad=8)
    assert ids.sentinels == 3 and ids.prompt_overhead == 3
    doc = np.arange(100, 112)
    assert permute(doc, ids, (2, 5), spm=False).tolist() == [
        5,
        100,
        101,
        7,
        *range(105, 109),
        6,
        102,
        103,
        104,
    ]
    assert permute(doc, ids, (2, 5), spm=True).tolist() == [
        5,
        7,
        *range(105, 109),
        6,
        100,
        101,
        102,
        103,
        104,
    ]


def test_detection_tells_look_alike_families_apart() -> None:
    qwen_like = ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>", "<|fim_pad|>"]
    assert detect_fim_format(qwen_like).family == "qwen2.5-coder"
    assert detect_fim_format([*qwen_like[:3], "<|file_separator|>"]).family == "codegemma"
    assert detect_fim_format(FIM_TOKENS).family == "starcoder"
    assert detect_fim_format(["<fim_prefix>", "<fim_middle>"]) is None  # a sentinel missing
    assert detect_fim_format(["<PRE>", "<SUF>", "<MID>"]) is None  # CodeLlama's carry the "▁"


def test_repo_level_context_in_the_family_format(tokenizers) -> None:
    def context(name: str, *args) -> list[str]:
        tok = tokenizers[name]
        encoder = HFEncoder(tok)  # special-token strings in names and code stay text
        ids = repo_context(fim_ids(tok), lambda text: encoder.encode(text).tolist(), *args)
        return tok.convert_ids_to_tokens(ids)

    def text(name: str, value: str) -> list[str]:
        tok = tokenizers[name]
        return tok.convert_ids_to_tokens(HFEncoder(tok).encode(value).tolist())

    files = [("a/util.py", "X = 1\n")]
    assert context("starcoder2", "me/lib", "a/main.py", files) == [
        "<repo_name>", *text("starcoder2", "me/lib"),
        "<file_sep>", *text("starcoder2", "a/util.py\nX = 1\n"),
        "<file_sep>", *text("starcoder2", "a/main.py\n"),
    ]  # fmt: skip
    assert context("qwen2.5-coder", "me/lib", "a/main.py", [("a/util.py", "X = 1")]) == [
        "<|repo_name|>", *text("qwen2.5-coder", "me/lib\n"),
        "<|file_sep|>", *text("qwen2.5-coder", "a/util.py\nX = 1\n"),
        "<|file_sep|>", *text("qwen2.5-coder", "a/main.py\n"),
    ]  # fmt: skip
    assert context("codegemma", "me/lib", "a/main.py", files) == [
        *text("codegemma", "X = 1\n"),
        "<|file_separator|>",
    ]
    assert context("deepseek-coder", "me/lib", "a/main.py", files) == []
    assert context("gpt2", "me/lib", "a/main.py", files) == []  # StarCoder's names without StarCoder2's
    # a repository name that spells a control token is text
    assert context("starcoder2", "<file_sep>", None).count("<file_sep>") == 0
    # before <fim_prefix> / opening the prefix: StarCoder2's path line is part of the FIM'd chunk
    for name, path_line_first in (("starcoder2", True), ("qwen2.5-coder", False)):
        tok = tokenizers[name]
        ids, encoder = fim_ids(tok), HFEncoder(tok)
        full = repo_context(
            ids, lambda text, e=encoder: e.encode(text).tolist(), "me/lib", "a/main.py", files
        )
        head, lead = split_context(ids, full, "a/main.py")
        assert head + lead == full
        assert lead == (encoder.encode("a/main.py\n").tolist() if path_line_first else [])
        assert header_length(np.asarray(full), ids, newline_mask(tok)) == len(head)
        assert split_context(ids, full[: -len(encoder.encode("a/main.py\n"))], None)[1] == []


def test_datamodule_refuses_fim_without_known_tokens_naming_the_families(tmp_path_factory, tmp_path) -> None:
    from gitnetic.modules.transformer_datamodule import TransformerDataModule

    tok = load_tokenizer(family_folder(tmp_path_factory, "plain"))
    write_shard(tmp_path / "train", [[5, 6, 7, 0]] * 4)
    params = TransformerDataModule.Params(
        train_data_prefix=str(tmp_path / "train"), batch_size=2, fim_rate=0.5
    )
    with pytest.raises(ConfigError) as info:
        TransformerDataModule(tokenizer=tok, params=params)
    message = str(info.value)
    assert "\n" not in message and "--fim_rate 0.5" in message and "qwen2.5-coder" in message
    assert "codellama (▁<PRE>)" in message and "deepseek-coder" in message


def test_training_batches_of_a_pretrained_family_use_its_format(tmp_path_factory, tmp_path, caplog) -> None:
    """The data module FIMs training samples with the tokenizer's family: DeepSeek's begin/hole/end,
    PSM only (said in the log though --fim_spm_rate is 0.5)."""
    from gitnetic.modules.transformer_datamodule import TransformerDataModule

    tok = load_tokenizer(family_folder(tmp_path_factory, "deepseek-coder"))
    begin, hole, end = tok.convert_tokens_to_ids(["<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"])
    eos = tok.eos_token_id
    rng = np.random.default_rng(0)
    write_shard(tmp_path / "train", [np.append(rng.integers(10, 300, size=30), eos) for _ in range(40)])
    params = TransformerDataModule.Params(
        train_data_prefix=str(tmp_path / "train"), batch_size=4, max_length=31, fim_rate=1.0, seed=1
    )
    with caplog.at_level("WARNING"):
        dm = TransformerDataModule(tokenizer=tok, params=params)
    assert "PSM" in caplog.text and "deepseek-coder" in caplog.text
    dm.setup("fit")
    rows = [row for batch in dm.train_dataloader() for row in batch["input_ids"].tolist()]
    assert len(rows) == 40
    for row in rows:
        assert row[0] == begin and row[-1] == eos  # PSM: begin P hole S end M </s>
        assert row.index(begin) < row.index(hole) < row.index(end)
