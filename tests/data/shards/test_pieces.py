"""Long documents are encoded in pieces (gitnetic/data/shards/pieces.py): the pieces' ids, concatenated,
must be exactly the whole document's, for both encoders, on ordinary and adversarial texts; and a
tokenizer whose pre-tokenizer is not the one the cut rule is proved for is never cut."""

from __future__ import annotations

import json
import random
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import regex
import tiktoken
from tokenizers import Regex, Tokenizer, normalizers, pre_tokenizers

from gitnetic.data.shards import pieces as pieces_mod
from gitnetic.data.shards.encoder import (
    GPT2_SPLIT_PATTERN,
    HFEncoder,
    TiktokenEncoder,
    build_encoder,
    tiktoken_ranks,
)
from gitnetic.data.shards.pieces import cut_reason, first_piece, pieces
from gitnetic.data.tokenizer.load import load_backend_tokenizer
from tests.helpers import TINY_CORPUS_FILES, stdlib_json_files

# Llama-3's split: keeps punctuation with the newlines after it (";\n" is one pre-token), so cutting
# before a newline would change its ids.
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
    r"|\s*[\r\n]+|\s+(?!\S)|\s+"
)


def _adversarial() -> list[str]:
    """Texts built to break a wrong cut rule: whitespace runs (which attach to the next word), CRLF,
    tabs, non-ASCII letters and spaces beside the cuts, contractions, no newline, no whitespace."""
    return [
        "x" + " " * 3000 + "y" + "\n" * 700 + "  z",
        ("a" + " \t " * 50 + "\n") * 80,
        "def f(a, b):\r\n\treturn a  # tab\r\n\r\n" * 200,
        "\t\tif x:\n\t\t\treturn 'it''s'\n" * 300,
        ("caf\u00e9 na\u00efve \u03c0\u22480.5 \U0001f600 \u4e2d\u6587\u3000I'm we'll they've\u00a0x\n")
        * 150,
        "it's 'll 've 're 'd 'm 's " * 400,
        " ".join(f"w{i}" for i in range(3000)),  # one line, spaces only
        "x = 1;" * 2000,  # no whitespace at all: one piece
        '"</s>" <s> <pad> </s>\n' * 300,  # literal special-token strings stay text
        '0x1F 1_000_000 3.14e-10 """doc""" f\'{x!r:>10}\'\n' * 200,
        "\n\n\n" + "end" + " " * 100,  # leading newlines, trailing spaces
        "",
    ]


def _random_texts(count: int, seed: int = 0) -> list[str]:
    """Random strings over the characters and pairs the split regex treats specially."""
    alphabet = ["a", "Z", "é", "π", "中", "1", "٣", "_", ";", "(", "'", "s", "ll", "😀", " ", "  ", "\t",
                "\n", "\r\n", "\r", "\u00a0", "\u3000", "\x0b", "\x85"]  # fmt: skip
    rng = random.Random(seed)
    return ["".join(rng.choices(alphabet, k=rng.randint(0, 400))) for _ in range(count)]


def _ordinary() -> list[str]:
    """The tests' corpus files (CRLF and all) and stdlib modules: what preprocess normally reads."""
    texts = [data.decode("utf-8") for data in TINY_CORPUS_FILES.values()]
    texts += [p.read_text("utf-8") for p in stdlib_json_files()]
    root = Path(sysconfig.get_paths()["stdlib"])
    texts += [p.read_text("utf-8") for p in sorted(root.glob("*.py"))[:40]]
    return texts


def _cuts(text: str, piece_chars: int) -> list[int]:
    out, pos = [], 0
    for piece in pieces(text, piece_chars):
        pos += len(piece)
        out.append(pos)
    return out[:-1]


def test_pieces_rejoin_and_cut_only_where_the_rule_allows() -> None:
    for text in _ordinary()[:20] + _adversarial() + _random_texts(200):
        for size in (1, 7, 64, 1000):
            parts = list(pieces(text, size))
            assert "".join(parts) == text and all(parts[:-1]) and len(parts) >= 1
            for p in _cuts(text, size):
                assert "!" <= text[p - 1] <= "~" and text[p] in " \t\r\n", (text[p - 1 : p + 1], size)
    text = "abc def\n" * 1000
    assert all(4 <= len(p) <= 16 for p in pieces(text, 16))  # cut points everywhere: bounded pieces
    assert list(pieces("x" * 5000, 16)) == ["x" * 5000]  # none at all: one piece
    assert list(pieces("", 16)) == [""] and list(pieces("short", 16)) == ["short"]
    assert first_piece(text, 16) == next(pieces(text, 16)) and first_piece("ab", 16) == "ab"


def test_pre_tokens_of_pieces_equal_the_whole_in_every_regex_engine() -> None:
    """The proof's claim itself: no pre-token crosses a cut and each side splits as in the whole
    (HF's ByteLevel split in Rust/oniguruma, and the tiktoken pattern in Python's ``regex``)."""
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    pattern = regex.compile(GPT2_SPLIT_PATTERN)
    checked = 0
    for text in _random_texts(400, seed=1) + _adversarial()[:6]:
        for size in (1, 5, 23):
            parts = list(pieces(text, size))
            checked += len(parts) > 1
            assert [t for p in parts for t in pattern.findall(p)] == pattern.findall(text)
            assert [t for p in parts for t, _ in hf.pre_tokenize_str(p)] == [
                t for t, _ in hf.pre_tokenize_str(text)
            ]
    assert checked > 500


@pytest.fixture(scope="module")
def backend(tiny_tokenizer: Path) -> Tokenizer:
    return load_backend_tokenizer(tiny_tokenizer)


def _whole_hf(backend: Tokenizer, texts: list[str]) -> list[list[int]]:
    tok = Tokenizer.from_str(backend.to_str())
    tok.encode_special_tokens = True
    return [e.ids for e in tok.encode_batch(texts, add_special_tokens=False)]


@pytest.mark.parametrize("kind", ["tiktoken", "hf"])
@pytest.mark.parametrize("piece_chars", [16, 300, 4096])
def test_pieces_encode_to_the_whole_documents_ids(backend: Tokenizer, kind: str, piece_chars: int) -> None:
    """Byte-identical ids, whole vs pieces, for both encoders; HF's whole-document ids are the truth."""
    texts = _ordinary() + _adversarial() + _random_texts(100, seed=2)
    encoder = build_encoder(backend, kind, num_threads=2)
    assert encoder.name == kind
    encoder.piece_chars = piece_chars
    got = encoder.encode_batch(texts)
    assert sum(len(list(pieces(t, piece_chars))) > 1 for t in texts) >= 30  # really cut
    for text, ids, want in zip(texts, got, _whole_hf(backend, texts), strict=True):
        assert ids.dtype == np.uint32 and ids.tolist() == want, text[:60]
    long = max(texts, key=len)
    assert encoder.encode(long).tolist() == _whole_hf(backend, [long])[0]


def _tokenizer_variant(backend: Tokenizer, edit) -> Tokenizer:
    state = json.loads(backend.to_str())
    edit(state)
    return Tokenizer.from_str(json.dumps(state))


def test_other_pre_tokenizers_are_never_cut(backend: Tokenizer) -> None:
    """Only the proved configuration is cut; the rest encode each document whole, still exactly."""
    assert cut_reason(json.loads(backend.to_str())) is None
    llama = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(LLAMA3_PATTERN), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    # why the gate matters: that split keeps ";" with the newline the rule would cut before
    assert [t for t, _ in llama.pre_tokenize_str("x;\ny")][1] == ";Ċ"
    variants = {
        "prefix space": lambda s: s["pre_tokenizer"].update(add_prefix_space=True),
        "llama-3 split": lambda s: s.update(pre_tokenizer=json.loads(llama.__getstate__())),
        "normalizer": lambda s: s.update(normalizer=json.loads(normalizers.NFC().__getstate__())),
        "added token": lambda s: s["added_tokens"].append(
            {
                "id": 10_000,
                "content": ";\n",
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": False,
            }  # fmt: skip
        ),
    }
    text = "x = 1;\nif y:\n    z = 'it\u00e9s'\n" * 200
    for name, edit in variants.items():
        tok = _tokenizer_variant(backend, edit)
        assert cut_reason(json.loads(tok.to_str())) is not None, name
        encoder = HFEncoder(tok, piece_chars=16)
        assert encoder.piece_chars is None, name
        assert encoder.encode_batch([text])[0].tolist() == _whole_hf(tok, [text])[0], name
    ranks, why = tiktoken_ranks(backend)
    assert why is None
    other = tiktoken.Encoding(
        "llama3-split", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens={}
    )
    assert TiktokenEncoder(other, len(ranks), piece_chars=16).piece_chars is None


def test_default_piece_size_is_read_when_the_encoder_is_built(
    backend: Tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pieces_mod, "PIECE_CHARS", 123)
    assert HFEncoder(backend).piece_chars == 123
    assert build_encoder(backend, "tiktoken").piece_chars == 123


def test_pieces_of_one_text_run_on_several_threads(backend: Tokenizer) -> None:
    """A huge document is one batch of the writer: its pieces are spread over ``piece_threads`` threads
    even when the encoder's batch parallelism is 1, and the ids are still the whole text's."""
    import threading

    fast = build_encoder(backend, "tiktoken", num_threads=1)
    names: set[str] = set()

    class Tracing(TiktokenEncoder):
        def encode(self, text: str) -> np.ndarray:
            names.add(threading.current_thread().name)
            return super().encode(text)

    text = "\n".join(_ordinary())
    encoder = Tracing(fast.encoding, fast.vocab_size, num_threads=1, piece_chars=512, piece_threads=3)
    assert encoder.encode_batch([text])[0].tolist() == _whole_hf(backend, [text])[0]
    assert len({n for n in names if n.startswith("tiktoken-pieces")}) >= 2
    names.clear()
    assert len(Tracing(fast.encoding, fast.vocab_size, num_threads=1, piece_chars=512, piece_threads=1)
               .encode_batch([text])[0]) > 0 and names == {threading.current_thread().name}  # fmt: skip
