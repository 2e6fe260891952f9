"""Tokenizer training/loading with real (tiny) byte-level BPE tokenizers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gitnetic.common.errors import DataError
from gitnetic.data.tokenizer import TokenizerParams, load_tokenizer, train_tokenizer

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
