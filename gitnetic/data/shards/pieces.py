"""Where a long text can be cut so that its pieces, encoded apart and concatenated, give the whole's ids.

Why: encoding one huge document in one call costs memory in proportion to it (HF ``encode`` keeps about
120 bytes per character: offsets, alignments, token strings; a 50 MB single-line JSONL row took 12.5 GB).
Cut into pieces of about :data:`PIECE_CHARS` characters, the encoders' memory is bounded by a piece, not
by the longest document, and the ids are *the same*, because of where the cuts are made.

**Why the cut is exact.** Byte-level BPE with the GPT-2 pre-tokenizer first splits the text with the
regex ``'(?:[sdmt]|ll|ve|re)| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+`` (HF's
``ByteLevel(use_regex=True)`` and the tiktoken pattern of :mod:`gitnetic.data.shards.encoder`) and then
merges inside each pre-token only, never across two. So cutting at a position ``p`` where the regex's
matches on the whole text have a boundary, and where each side alone is matched the same way, changes
nothing. We cut only where ``text[p-1]`` is a printable ASCII non-space character (``!``..``~``) and
``text[p]`` is an ASCII space, tab, CR or LF -- e.g. just before the newline ending a line of code:

* *The whole has a boundary at p.* No alternative matches a non-space followed by a whitespace
  character: the letter/number/symbol runs take an optional space only at their *start* and never
  ``\\s`` after it, the contractions hold no space, and the ``\\s+`` runs hold no non-space. So the match
  holding ``text[p-1]`` ends exactly at ``p``, and every regex path at a start before ``p`` ends at or
  before ``p`` too.
* *The suffix is matched the same.* The regex has no look-behind and no anchor, so scanning
  ``text[p:]`` from 0 is scanning the whole from ``p``.
* *The prefix is matched the same.* Since no path crosses ``p``, the only way ``text[:p]`` could differ
  is a look-ahead that reaches ``p``: ``(?!\\S)`` there sees the end of the string in the prefix and
  the whitespace ``text[p]`` in the whole -- it succeeds in both.

Both sides of the rule are plain ASCII, so every engine involved (Python's, oniguruma in HF, fancy-regex in
tiktoken) agrees on which characters are ``\\s``. Other pre-tokenizers may join across such a point
(Llama-3's ``?[^\\s\\p{L}\\p{N}]+[\\r\\n]*`` keeps ``";\\n"`` together), and a normalizer or a non-special
added token can span it, so :func:`cut_reason` allows cutting only for the one configuration proved
here; any other tokenizer encodes each document whole, as before. A text with no cut point for a long
stretch (minified code, one base64 blob) yields a bigger piece, up to the next cut point or its end.

The tests compare pieces with whole documents for both encoders on ordinary and adversarial texts
(``tests/data/shards/test_pieces.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["PIECE_CHARS", "cut_reason", "first_piece", "pieces"]

# Characters per piece: a piece is cut at the first cut point in its second half, else at the first one
# after it. 256 Ki characters keep HF's transient memory near 30 MB per piece and are long enough that
# per-call overhead is nothing next to the BPE itself.
PIECE_CHARS = 1 << 18

# A cut point is the end of a match: a printable ASCII non-space followed by an ASCII space, tab, CR or LF.
_CUT = re.compile(r"[!-~](?=[\t\n\r ])")


def pieces(text: str, piece_chars: int = PIECE_CHARS) -> Iterator[str]:
    """``text`` in consecutive pieces of about ``piece_chars`` characters, cut only at exact points.

    ``"".join(pieces(text)) == text``; a text of at most ``piece_chars`` characters is one piece.
    """
    start, size = 0, len(text)
    while size - start > piece_chars:
        end = _cut_after(text, start + max(1, piece_chars // 2), start + piece_chars)
        if end is None:
            break
        yield text[start:end]
        start = end
    yield text[start:]  # a cut point is never the end, so this piece is never empty (unless text is)


def first_piece(text: str, piece_chars: int = PIECE_CHARS) -> str:
    """The first of :func:`pieces`: its ids are the first ids of the whole text."""
    return next(pieces(text, piece_chars))


def _cut_after(text: str, lo: int, hi: int) -> int | None:
    """The first cut point in ``text[lo:hi]``, else the first one after ``hi``, else None (no cut)."""
    match = _CUT.search(text, lo, hi) or _CUT.search(text, hi)
    return match.end() if match is not None else None


def cut_reason(state: dict[str, Any]) -> str | None:
    """None when pieces of a text encode to the whole's ids with the tokenizer whose serialized
    ``tokenizer.json`` state is ``state``; else why not (the documents are then encoded whole)."""
    if state.get("normalizer") is not None:
        return "the tokenizer has a normalizer"
    if any(not t.get("special") for t in state.get("added_tokens") or []):
        return "the tokenizer has non-special added tokens (matched inside text, maybe across a cut)"
    pre = state.get("pre_tokenizer") or {}
    if pre.get("type") == "Sequence" and len(pre.get("pretokenizers", [])) == 1:
        pre = pre["pretokenizers"][0]
    if not (
        pre.get("type") == "ByteLevel" and pre.get("use_regex", True) and not pre.get("add_prefix_space")
    ):
        return f"pre-tokenizer {pre.get('type')} is not ByteLevel(use_regex=True, add_prefix_space=False)"
    return None
