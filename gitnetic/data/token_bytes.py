"""How many UTF-8 bytes of text each token id stands for: the denominator of bits per byte.

Why per token, from the vocabulary: evaluate and training's validation score token ids read from the
shards, not text, and only some of a document's tokens (a causal LM never predicts a row's first token;
``--max_documents`` stops early). Counting the bytes of exactly the tokens scored keeps numerator and
denominator over the same text, with no second pass over the corpus and nothing new in the shards.
On the data floor, below both: validation (``TransformerModule``) counts bytes as evaluate does.

Exact for the two families code models use:

* byte-level BPE (gitnetic's own tokenizers, GPT-2, StarCoder, Qwen2.5-Coder, DeepSeek-Coder): every
  vocabulary entry spells its bytes in GPT-2's byte-to-character table, so a token is as many bytes as
  it has characters (a character outside the table, which such a vocabulary should not hold, counts its
  own UTF-8 length);
* SentencePiece-style BPE (Llama, CodeLlama, CodeGemma): ``▁`` is a space and a byte-fallback token
  ``<0x0A>`` one byte. The space SentencePiece prepends to a text's first word is counted too; it is on
  a document's first token, which a causal LM does not score.

Special tokens (``</s>``, the FIM sentinels, padding) stand for no text: 0 bytes, while the loss of
predicting them (where a file ends) still counts in the numerator, as every published bits-per-byte
figure counts the end-of-text token. Other decoders (WordPiece's ``##``, which drops whitespace) get
their tokens' UTF-8 length: approximate, and only masked LMs use them, for which evaluate reports no
bits per byte.
"""

from __future__ import annotations

import json
import re
from typing import Any

import numpy as np

__all__ = ["token_byte_lengths"]

_BYTE_FALLBACK = re.compile(r"<0x[0-9A-Fa-f]{2}>")


def _byte_level_chars() -> dict[str, int]:
    """GPT-2's printable stand-ins for the 256 bytes (each one byte of text)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1))
    cs = bs + [256 + i for i in range(256 - len(bs))]
    return {chr(c): 1 for c in cs}


def _decoders(state: dict[str, Any]) -> list[dict[str, Any]]:
    decoder = state.get("decoder") or {}
    if decoder.get("type") == "Sequence":
        return list(decoder.get("decoders") or [])
    return [decoder] if decoder else []


def _space_marks(decoders: list[dict[str, Any]]) -> set[str]:
    """The characters the decoder turns into a space (SentencePiece's ``▁``)."""
    marks = set()
    for d in decoders:
        if d.get("type") == "Metaspace":
            marks.add(d.get("replacement") or "▁")
        elif d.get("type") == "Replace" and d.get("content") == " ":
            pattern = d.get("pattern") or {}
            if isinstance(pattern.get("String"), str) and len(pattern["String"]) == 1:
                marks.add(pattern["String"])
    return marks


def token_byte_lengths(tokenizer: Any, size: int) -> np.ndarray:
    """``lengths[id]``: the UTF-8 bytes of text token ``id`` decodes to, for ids below ``size`` (the
    model's vocabulary; ids the tokenizer does not have, padding rows of the embedding, are 0)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    state = json.loads(backend.to_str())
    decoders = _decoders(state)
    kinds = {d.get("type") for d in decoders}
    byte_level = "ByteLevel" in kinds
    byte_fallback = "ByteFallback" in kinds
    marks = _space_marks(decoders)
    table = _byte_level_chars()
    added = {int(t["id"]): t for t in state.get("added_tokens") or []}
    lengths = np.zeros(size, dtype=np.int64)
    for token, idx in backend.get_vocab(with_added_tokens=True).items():
        if idx >= size:
            continue
        if idx in added:
            lengths[idx] = 0 if added[idx].get("special") else len(added[idx]["content"].encode("utf-8"))
        elif byte_level:
            lengths[idx] = sum(table.get(ch) or len(ch.encode("utf-8")) for ch in token)
        elif byte_fallback and _BYTE_FALLBACK.fullmatch(token):
            lengths[idx] = 1
        else:
            text = "".join(" " if ch in marks else ch for ch in token)
            lengths[idx] = len(text.encode("utf-8"))
    return lengths
