"""Tokenizer training/loading with real (tiny) byte-level BPE tokenizers."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gitnetic.cli import tokenizer as tokenizer_cli
from gitnetic.common.errors import DataError
from gitnetic.data.tokenizer.load import load_tokenizer
from gitnetic.data.tokenizer.params import TokenizerParams, TokenizerStageParams
from gitnetic.data.tokenizer.sample import SplitSample
from gitnetic.data.tokenizer.train import (
    TokenizerStageResult,
    tokenizer_stage,
    train_tokenizer,
)

HARD_TEXTS = [
    "def f(x):\n\tif x:\n\t\treturn x  \n",  # tabs and trailing spaces
    "line one\r\nline two\r\n\r\n",  # CRLF
    's = "Grüß Gott, こんにちは, Привет 👋🏽"  # ß é\u0301\n',  # unicode incl. combining + emoji modifier
    "\ufeffprint('bom')\n",
    "   leading spaces and a lone \r carriage return",
    "x = '<s> not special </s> <pad>'\n",
    "",
]


@pytest.mark.parametrize("text", HARD_TEXTS)
def test_round_trip_is_lossless(tiny_tokenizer: Path, text: str) -> None:
    tok = load_tokenizer(tiny_tokenizer)
    ids = tok.encode(text, add_special_tokens=False)
    assert tok.decode(ids, clean_up_tokenization_spaces=False) == text


def test_tokenizer_learned_merges_on_code(tiny_tokenizer: Path) -> None:
    tok = load_tokenizer(tiny_tokenizer)
    text = "    def __init__(self):\n        return None\n"
    assert len(tok.encode(text, add_special_tokens=False)) < len(text.encode()) / 2


def test_auto_tokenizer_loads_offline_with_special_token_ids(tiny_tokenizer: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(tiny_tokenizer), local_files_only=True)
    assert len(tok) == 512
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert tok.convert_ids_to_tokens([0, 1, 2, 3, 4]) == ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    ours = load_tokenizer(tiny_tokenizer)  # skips the AutoTokenizer import; must be the same tokenizer
    assert type(ours) is type(tok) and ours.special_tokens_map == tok.special_tokens_map
    assert all(ours.encode(t) == tok.encode(t) for t in HARD_TEXTS)


def test_max_sample_bytes_stops_reading_the_stream(tmp_path: Path) -> None:
    pulled = []

    def docs() -> Iterator[str]:
        for i in range(50):
            pulled.append(i)
            yield f"def function_{i}(argument):\n    return argument * {i}\n" * 10  # 500 bytes

    train_tokenizer(docs(), tmp_path / "tok", TokenizerParams(vocab_size=300, max_sample_bytes=1200))
    assert pulled == [0, 1, 2]  # 3 docs reach 1200 bytes; the rest is never read
    assert (tmp_path / "tok" / "tokenizer.json").is_file()


def test_vocab_too_small_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="too small"):
        train_tokenizer(["x = 1\n"], tmp_path / "tok", TokenizerParams(vocab_size=100))
    assert not (tmp_path / "tok").exists()


def test_empty_stream_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no documents"):
        train_tokenizer(iter([]), tmp_path / "tok", TokenizerParams(vocab_size=300))
    assert not (tmp_path / "tok").exists()


def test_load_missing_tokenizer_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="run 'python -m gitnetic tokenizer' first"):
        load_tokenizer(tmp_path)


# ----------------------------------------------------------------- the stage's sample of a big split
def write_split(path: Path, texts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"text": t, "path": f"f{i}.py"}) + "\n" for i, t in enumerate(texts)))
    return path


def two_halves(path: Path, docs: int = 200) -> Path:
    """A split whose first half uses only one set of words and whose second half only another: a prefix
    of it never sees the second half's words."""
    first = [
        f"apple_orchard = xylophone({i})\nfor apple in orchard:\n    print(apple)\n" for i in range(docs)
    ]
    second = [
        f"zebrafish_quokka = marimba({i})\nwhile zebrafish:\n    quokka(marimba)\n" for i in range(docs)
    ]
    return write_split(path, first + second)


def stage(train_file: Path, out_dir: Path, **params) -> TokenizerStageResult:
    return tokenizer_stage(
        TokenizerStageParams(train_file=str(train_file), out_dir=str(out_dir)),
        TokenizerParams(vocab_size=300, **params),
    )


def test_large_split_sample_is_reproducible_and_bounded(tmp_path: Path) -> None:
    split = two_halves(tmp_path / "train.jsonl")
    cap = split.stat().st_size // 4
    runs = [stage(split, tmp_path / f"tok{i}", max_sample_bytes=cap) for i in range(2)]
    assert runs[0].split.sampled and runs[0].bytes <= cap + 100  # stops at the document that reaches it
    assert 0 < runs[0].documents < 400 and runs[0].documents == runs[1].documents
    files = [(tmp_path / f"tok{i}" / "tokenizer.json").read_bytes() for i in range(2)]
    assert files[0] == files[1]
    other_seed = stage(split, tmp_path / "seed1", max_sample_bytes=cap, sample_seed=1)
    assert (tmp_path / "seed1" / "tokenizer.json").read_bytes() != files[0] and other_seed.split.sampled


def test_sample_spans_the_whole_split(tmp_path: Path) -> None:
    split = two_halves(tmp_path / "train.jsonl")
    cap = split.stat().st_size // 4
    sample = SplitSample.of(split, cap, seed=0)
    kept = list(sample.texts())
    every = [json.loads(line)["text"] for line in split.read_text().splitlines()]
    assert sample.sampled and 0 < len(kept) < 200 and kept != every[: len(kept)]  # not a prefix
    assert kept == [text for text in every if text in kept]  # in file order
    assert any(text.startswith("zebrafish") for text in kept)  # documents from the second half too
    vocab = stage(split, tmp_path / "tok", max_sample_bytes=cap).tokenizer.get_vocab()
    assert any("zebrafish" in token for token in vocab) and any("apple" in token for token in vocab)


def test_split_under_the_cap_trains_on_all_of_it(tmp_path: Path) -> None:
    split = two_halves(tmp_path / "train.jsonl", docs=50)
    whole = stage(split, tmp_path / "all", max_sample_bytes=0)
    fits = stage(split, tmp_path / "fits", max_sample_bytes=split.stat().st_size)
    assert not fits.split.sampled and fits.documents == whole.documents == 100
    assert (tmp_path / "fits/tokenizer.json").read_bytes() == (tmp_path / "all/tokenizer.json").read_bytes()


@pytest.mark.parametrize(
    ("cap", "expected"),
    [
        (0, r"all 100 documents \(\d+\.\d MB\) of the train split"),
        (
            2000,
            r"a \d+\.\d MB sample of \d+ documents \(\d+\.\d% of the \d+\.\d MB train split, sample_seed 3\)",
        ),
    ],
)
def test_stage_logs_what_training_cost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, cap: int, expected: str
) -> None:
    split = two_halves(tmp_path / "train.jsonl", docs=50)
    args = ["--train_file", str(split), "--out_dir", str(tmp_path / "tok"), "--vocab_size", "300"]
    with caplog.at_level(logging.INFO):
        assert tokenizer_cli.main([*args, "--max_sample_bytes", str(cap), "--sample_seed", "3"]) == 0
    cost = [r.getMessage() for r in caplog.records if r.getMessage().startswith("tokenizer: trained on")]
    assert len(cost) == 1
    assert re.fullmatch(rf"tokenizer: trained on {expected} in \d+\.\d s, peak RSS [\d,]+ MB", cost[0]), cost
