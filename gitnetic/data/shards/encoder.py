"""The fastest exact encoder for a trained byte-level BPE: tiktoken when it provably agrees, else HF.

Why: binarizing is dominated by BPE. tiktoken's Rust core runs 3-5x faster than HF ``encode_batch``
on the same vocabulary (bench/RESULTS.md), but it is only usable if it yields *the same ids* as the
tokenizer the model is trained and served with. So :func:`build_encoder` converts the trained BPE to
tiktoken ranks, checks the conditions under which the two algorithms coincide, validates on a sample,
and falls back to HF ``encode_batch`` otherwise.

Why the ids can agree at all: HF BPE repeatedly merges the adjacent pair with the lowest *merge rank*;
tiktoken merges the adjacent pair whose *concatenation* has the lowest token rank. The HF trainer gives
each new token the next id as it records the merge that created it, so ``rank = id`` makes "lowest merge
rank" and "lowest merged-token rank" the same order for every pair that is a recorded merge. The two
can still differ when a pair that is *not* a recorded merge concatenates to a vocabulary token (``ab+c``
when ``abc`` was learnt as ``a+bc``) and such a pair actually shows up adjacent during HF's merging.
That is rare (no mismatch on the whole CPython stdlib with a 16k vocab) but not impossible, which is why
the build-time sample check exists and preprocess spot-checks documents against HF (``verify_every``).

Literal special-token strings in source text (``"</s>"``, ``<pad>``) are always encoded as ordinary
text: HF is told not to split them out (``encode_special_tokens = True``) and tiktoken never sees them
as special. The only special id in a shard is the ``</s>`` preprocess appends.

Texts longer than :data:`~gitnetic.data.shards.pieces.PIECE_CHARS` are encoded in pieces cut where the
pre-tokenizer provably starts a new pre-token (:mod:`gitnetic.data.shards.pieces`), so the ids equal the
whole text's while memory is bounded by a few pieces, not by the longest document.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, Protocol

import numpy as np
import tiktoken
from tokenizers import Tokenizer

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.shards import pieces

__all__ = [
    "GPT2_SPLIT_PATTERN",
    "Encoder",
    "EncoderMismatch",
    "HFEncoder",
    "TiktokenEncoder",
    "available_cpus",
    "build_encoder",
    "bytes_to_unicode",
    "tiktoken_ranks",
]

log = logging.getLogger(__name__)

EncoderKind = Literal["auto", "tiktoken", "hf"]

# The split regex of HF's ByteLevel pre-tokenizer (use_regex=True), in tiktoken's spelling (= r50k).
GPT2_SPLIT_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# tiktoken's fast zero-copy ``encode_to_numpy`` goes through the special-token path; with no special
# tokens that path scans an empty regex at every position (slow), so we register one string that cannot
# occur in practice and never allow it: text containing it is still encoded as ordinary text.
_NEVER_SPECIAL = "\x00<|gitnetic-unused-special|>\x00"

# Always part of the build-time check: strings that exercise the split regex and literal special tokens.
_PROBES = [
    'x = "</s>" + "<s>" + "<pad>" + "<unk>" + "<mask>"\n',
    "def f(a, b):\n\treturn a  # tab\r\n\r\n",
    "    \n\n   x  \t y \u00a0z\n",
    "caf\u00e9 na\u00efve \u03c0\u22480.5 \U0001f600 \u4e2d\u6587 I'm we'll they've\n",
    "0x1F 1_000_000 3.14e-10 '''doc''' \"\"\"doc\"\"\" f'{x!r:>10}'\n",
]


class EncoderMismatch(DataError):
    """The tiktoken path produced different ids than HF for some text."""


class Encoder(Protocol):
    """Turns texts into token ids (``np.ndarray`` per text, values < ``vocab_size``)."""

    name: str
    vocab_size: int

    def encode(self, text: str) -> np.ndarray: ...

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]: ...


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable-char table used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs[:]
    extra = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + extra)
            extra += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def _backend(tokenizer: Any):
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (an HF fast tokenizer or a raw one)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not isinstance(backend, Tokenizer):
        raise ConfigError(
            f"{type(tokenizer).__name__} is not a fast (Rust) tokenizer; load it with "
            "gitnetic.data.tokenizer.load.load_tokenizer"
        )
    return backend


# Pieces of one long text encoded per call (at least; one per CPU on bigger machines): HF's thread pool
# or tiktoken's shares a long text between cores while the transient memory stays a few pieces' worth.
_PIECES_PER_CALL = 4

Batch = Callable[[list[str]], list[np.ndarray]]


def _encode_long(
    encode_batch: Batch, texts: Sequence[str], piece_chars: int | None, encode_pieces: Batch | None = None
) -> list[np.ndarray]:
    """``encode_batch(texts)``, with every text longer than ``piece_chars`` encoded piece by piece
    (:func:`gitnetic.data.shards.pieces.pieces`, by ``encode_pieces``, default ``encode_batch``) and
    its ids concatenated; ``piece_chars=None``: never cut."""
    if piece_chars is None or all(len(t) <= piece_chars for t in texts):
        return encode_batch(list(texts))
    encode_pieces = encode_pieces or encode_batch
    per_call = max(_PIECES_PER_CALL, available_cpus())
    out: list[np.ndarray | None] = [None] * len(texts)
    short = [i for i, t in enumerate(texts) if len(t) <= piece_chars]
    if short:
        for i, ids in zip(short, encode_batch([texts[i] for i in short]), strict=True):
            out[i] = ids
    for i, text in enumerate(texts):
        if out[i] is not None:
            continue
        parts: list[np.ndarray] = []
        group: list[str] = []
        for piece in pieces.pieces(text, piece_chars):
            group.append(piece)
            if len(group) == per_call:
                parts += encode_pieces(group)
                group = []
        if group:
            parts += encode_pieces(group)
        out[i] = np.concatenate(parts)
    return out  # type: ignore[return-value]


class HFEncoder:
    """HF ``tokenizers`` ``encode_batch`` (Rust, multi-threaded), special-token strings kept as text.

    ``piece_chars``: texts longer than this are encoded in exact pieces when the tokenizer allows it
    (:func:`gitnetic.data.shards.pieces.cut_reason`); default :data:`~gitnetic.data.shards.pieces.PIECE_CHARS`.
    """

    name = "hf"

    def __init__(self, tokenizer: Any, copy: bool = True, piece_chars: int | None = None) -> None:
        # a private copy, so flipping encode_special_tokens does not change the caller's tokenizer
        # (``copy=False`` when the caller owns a throwaway instance: saves re-parsing the vocabulary)
        backend = _backend(tokenizer)
        state = backend.to_str()
        self._tok = Tokenizer.from_str(state) if copy else backend
        self._tok.encode_special_tokens = True
        self.vocab_size = int(self._tok.get_vocab_size(with_added_tokens=True))
        self._fast = hasattr(self._tok, "encode_batch_fast")  # skips offsets (tokenizers >= 0.21)
        why = pieces.cut_reason(json.loads(state))
        if why is not None:
            log.debug("encoder: HF encodes long texts whole (%s)", why)
        self.piece_chars = None if why is not None else (piece_chars or pieces.PIECE_CHARS)

    def encode(self, text: str) -> np.ndarray:
        if self.piece_chars is not None and len(text) > self.piece_chars:
            return self.encode_batch([text])[0]
        return np.asarray(self._tok.encode(text, add_special_tokens=False).ids, dtype=np.uint32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return _encode_long(self._encode_whole, texts, self.piece_chars)

    def _encode_whole(self, texts: list[str]) -> list[np.ndarray]:
        batch = self._tok.encode_batch_fast if self._fast else self._tok.encode_batch
        return [np.asarray(e.ids, dtype=np.uint32) for e in batch(texts, add_special_tokens=False)]


class TiktokenEncoder:
    """tiktoken built from the trained BPE; ``encode_batch`` runs ``num_threads`` threads (GIL released).

    ``encode_batch`` cuts texts longer than ``piece_chars`` (default
    :data:`~gitnetic.data.shards.pieces.PIECE_CHARS`) into exact pieces when the encoding splits with
    :data:`GPT2_SPLIT_PATTERN`; ``encode`` is the primitive it applies to each piece. The pieces of one
    text run on ``piece_threads`` threads (default: every CPU this process may use), also when
    ``num_threads`` is 1 because the caller parallelizes over batches: a huge document is one batch.
    """

    name = "tiktoken"

    def __init__(
        self,
        encoding: Any,
        vocab_size: int,
        num_threads: int = 1,
        piece_chars: int | None = None,
        piece_threads: int | None = None,
    ) -> None:
        self.encoding = encoding
        self.vocab_size = vocab_size
        self.num_threads = max(1, int(num_threads))
        self.piece_threads = max(1, int(piece_threads or available_cpus()))
        self._pool: ThreadPoolExecutor | None = None
        self._piece_pool: ThreadPoolExecutor | None = None
        self._numpy = hasattr(encoding, "encode_to_numpy")  # zero-copy ids (tiktoken >= 0.8)
        self._none: frozenset[str] = frozenset()
        self.reference: HFEncoder | None = None  # the HF encoder it was validated against
        # the cut rule is proved for this split pattern only (another one may join ";\n", say)
        exact = getattr(encoding, "_pat_str", None) == GPT2_SPLIT_PATTERN
        self.piece_chars = (piece_chars or pieces.PIECE_CHARS) if exact else None

    def encode(self, text: str) -> np.ndarray:
        if self._numpy:
            return self.encoding.encode_to_numpy(text, allowed_special=self._none, disallowed_special=())
        return np.asarray(self.encoding.encode_ordinary(text), dtype=np.uint32)

    def encode_batch(self, texts: Sequence[str]) -> list[np.ndarray]:
        return _encode_long(self._encode_whole, texts, self.piece_chars, self._encode_pieces)

    def _encode_whole(self, texts: list[str]) -> list[np.ndarray]:
        if self.num_threads == 1 or len(texts) < 2:
            return [self.encode(t) for t in texts]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.num_threads, thread_name_prefix="tiktoken")
        return list(self._pool.map(self.encode, texts))

    def _encode_pieces(self, texts: list[str]) -> list[np.ndarray]:
        if self.piece_threads == 1 or len(texts) < 2:
            return [self.encode(t) for t in texts]
        if self._piece_pool is None:
            self._piece_pool = ThreadPoolExecutor(self.piece_threads, thread_name_prefix="tiktoken-pieces")
        return list(self._piece_pool.map(self.encode, texts))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_pool": None, "_piece_pool": None}


def tiktoken_ranks(tokenizer: Any) -> tuple[dict[bytes, int], str | None]:
    """``(mergeable_ranks, None)`` when tiktoken can reproduce the BPE, else ``({}, why_not)``.

    The checks are the structural half of the exactness argument in this module's docstring.
    """
    backend = _backend(tokenizer)
    state = json.loads(backend.to_str())
    model = state.get("model") or {}
    if model.get("type") != "BPE":
        return {}, f"model is {model.get('type')}, not BPE"
    for key, bad in (("dropout", None), ("continuing_subword_prefix", None), ("end_of_word_suffix", None)):
        if model.get(key) not in (bad, ""):
            return {}, f"BPE option {key}={model.get(key)!r} is not supported by tiktoken"
    if model.get("byte_fallback") or model.get("ignore_merges"):
        return {}, "byte_fallback/ignore_merges BPE options are not supported by tiktoken"
    if state.get("normalizer") is not None:
        return {}, "the tokenizer has a normalizer"
    pre = state.get("pre_tokenizer") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    if not (
        pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")
    ):
        return {}, f"pre-tokenizer {pre.get('type')} is not ByteLevel(use_regex=True, add_prefix_space=False)"
    added = state.get("added_tokens") or []
    if any(not t.get("special") for t in added):
        return {}, "the tokenizer has non-special added tokens (HF matches them inside text)"
    special = {t["content"] for t in added}
    vocab: dict[str, int] = model["vocab"]
    merges = model.get("merges") or []
    u2b = {u: b for b, u in bytes_to_unicode().items()}
    ranks: dict[bytes, int] = {}
    for token, idx in vocab.items():
        if token in special:
            continue
        try:
            ranks[bytes(u2b[ch] for ch in token)] = int(idx)
        except KeyError:
            return {}, f"vocabulary entry {token!r} is not a byte-level token"
    if len(set(ranks.values())) != len(ranks):
        return {}, "two vocabulary entries share an id"
    if any(bytes([b]) not in ranks for b in range(256)):
        return {}, "the vocabulary lacks some of the 256 byte tokens"
    # rank = id is only right if ids grow in merge order, one new token per merge
    last = max(ranks[bytes([b])] for b in range(256))
    for merge in merges:
        left, right = merge.split(" ", 1) if isinstance(merge, str) else merge
        merged = vocab.get(left + right)
        if merged is None or merged <= last:
            return {}, f"merge {left!r}+{right!r} does not create a new token in id order"
        last = merged
    if len(merges) + 256 != len(ranks):
        return {}, "the vocabulary has tokens no merge creates"
    return ranks, None


def _tiktoken_encoding(ranks: dict[bytes, int], vocab_size: int) -> tiktoken.Encoding:
    never_id = max(vocab_size, max(ranks.values()) + 1)
    return tiktoken.Encoding(
        "gitnetic-bpe",
        pat_str=GPT2_SPLIT_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={_NEVER_SPECIAL: never_id},
    )


def available_cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroup affinity, unlike ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def first_mismatch(a: Encoder, b: Encoder, texts: Sequence[str]) -> int | None:
    """Index of the first text ``a`` and ``b`` encode differently, or None."""
    for i, (x, y) in enumerate(zip(a.encode_batch(texts), b.encode_batch(texts), strict=True)):
        if not np.array_equal(x, y):
            return i
    return None


def build_encoder(
    tokenizer: Any,
    kind: EncoderKind = "auto",
    num_threads: int | None = None,
    sample: Sequence[str] = (),
    copy_tokenizer: bool = True,
) -> Encoder:
    """The fastest encoder that yields exactly the ids of ``tokenizer`` (special strings kept as text).

    ``kind="auto"`` picks tiktoken when the BPE converts (see :func:`tiktoken_ranks`) and it matches HF
    on the built-in probes plus ``sample``; otherwise HF ``encode_batch``. ``kind="tiktoken"`` raises
    ``ConfigError`` instead of falling back. ``num_threads`` is tiktoken's batch parallelism
    (default: the CPUs this process may use). ``copy_tokenizer=False`` lets the HF encoder reuse (and
    reconfigure) ``tokenizer`` instead of copying it.
    """
    if kind not in ("auto", "tiktoken", "hf"):
        raise ConfigError(f"unknown encoder {kind!r}; choose auto, tiktoken or hf")
    hf = HFEncoder(tokenizer, copy=copy_tokenizer)
    if kind == "hf":
        return hf
    ranks, why = tiktoken_ranks(tokenizer)
    if why is None:
        threads = num_threads or available_cpus()
        fast = TiktokenEncoder(_tiktoken_encoding(ranks, hf.vocab_size), hf.vocab_size, num_threads=threads)
        probes = [*_PROBES, *sample]
        bad = first_mismatch(fast, hf, probes)
        if bad is None:
            fast.reference = hf
            return fast
        why = f"tiktoken and HF disagree on sample text {bad} ({probes[bad][:40]!r}...)"
    if kind == "tiktoken":
        raise ConfigError(
            f"cannot use the tiktoken encoder for this tokenizer: {why}; use --encoder auto or hf"
        )
    log.info("encoder: using HF encode_batch (%s)", why)
    return hf
