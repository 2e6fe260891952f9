"""Fill-in-the-middle formats: which special tokens a tokenizer's model family infills with, in which order.

A pretrained code model only infills well in the layout it was trained on, and the families disagree on
the token names (``<fim_prefix>`` / ``<|fim_prefix|>`` / ``<｜fim▁begin｜>`` / ``▁<PRE>``), on whether a
prompt starts with ``<s>``, on what ends the middle (``</s>``, CodeLlama's ``▁<EOT>``) and on whether
they also trained the suffix-first (SPM) variant. :data:`FAMILIES` holds those facts as data;
:func:`fim_ids` finds the family in a tokenizer's vocabulary and :func:`fim_pieces` lays out
prefix / suffix around the sentinels: training (``gitnetic.data.loading.fim``), ``generate --infill``,
evaluate's infill scores and ``benchmark --infill`` all build their sequences with it (docs/fim.md).

Why a torch-free module: the tokenizer stage adds StarCoder's names to the tokenizers it trains with
``--fim_tokens``, and must not load torch, which ``gitnetic.data.loading.fim`` (a torch ``Dataset``) does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = [
    "FAMILIES",
    "FIM_MIDDLE",
    "FIM_PAD",
    "FIM_PREFIX",
    "FIM_SUFFIX",
    "FIM_TOKENS",
    "FimFormat",
    "FimIds",
    "detect_fim_format",
    "fim_ids",
    "fim_pieces",
    "header_length",
    "infill_prompt",
    "known_families",
    "newline_mask",
    "no_fim_tokens",
    "repo_context",
    "split_context",
]

FIM_PREFIX = "<fim_prefix>"
FIM_MIDDLE = "<fim_middle>"
FIM_SUFFIX = "<fim_suffix>"
FIM_PAD = "<fim_pad>"
# StarCoder's names, in the order its tokenizer lists them (what ``tokenizer --fim_tokens`` adds).
FIM_TOKENS = [FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD]

Order = Literal["psm", "spm"]


@dataclass(frozen=True)
class FimFormat:
    """One family's FIM convention, by token *strings* (its ids depend on the tokenizer).

    ``prefix``/``suffix``/``middle`` are the three sentinels in PSM order: a PSM sequence is
    ``prefix P suffix S middle M``, an SPM one ``prefix suffix S middle P M``. DeepSeek-Coder's
    ``<｜fim▁begin｜> P <｜fim▁hole｜> S <｜fim▁end｜> M`` is the same layout under other names, so its
    begin / hole / end fill these three fields."""

    family: str
    prefix: str
    suffix: str
    middle: str
    pad: str | None = None
    orders: tuple[Order, ...] = ("psm",)  # layouts the family trained on (inference prompts PSM, in all)
    eot: str | None = None  # ends a middle, before </s> (CodeLlama's ▁<EOT>, CodeGemma's <|file_separator|>)
    bos: bool = False  # the family's infill prompts start with the tokenizer's <s> (Llama-style tokenizers)
    suffix_space: bool = True  # False: the suffix is encoded without the dummy leading space (CodeLlama)
    file_sep: str | None = None  # repository-level tokens, where the family has them
    repo_name: str | None = None
    # where a FIM'd file's path line goes: False, at the start of its prefix (StarCoder2 FIMs the whole
    # chunk after <file_sep>, path included); True, before <fim_prefix> (Qwen2.5-Coder's repo-level FIM)
    path_in_header: bool = False
    requires: tuple[str, ...] = ()  # further tokens that tell this family from another with the same names

    @property
    def spm(self) -> bool:
        """Whether the family also trained suffix-first (SPM) sequences."""
        return "spm" in self.orders


# Checked in this order: the first whose sentinels (and ``requires``) are all in the vocabulary wins.
# Sources: bigcode's Megatron-LM and StarCoder/StarCoder2 tokenizers; SantaCoder's tokenizer;
# Qwen2.5-Coder's README and technical report (PSM only; repo-level FIM ``<|repo_name|>R\n<|file_sep|>PATH\n``
# before ``<|fim_prefix|>``, its Figure 4); StarCoder 2's paper, section 5 (repository chunks are split at
# ``<file_sep>`` and each chunk, path line included, may be FIM'd; ``<repo_name>R`` never is, so a FIM'd
# file reads ``<file_sep><fim_prefix>PATH\nP...``); CodeGemma's model
# card and prompt docs (PSM and SPM; a middle ends with ``<|file_separator|>``, which also separates
# files); DeepSeek-Coder's README (PSM, begin/hole/end after <s>);
# transformers' CodeLlamaTokenizer and Meta's codellama ``infilling_prompt_tokens`` (<s> ▁<PRE> ▁prefix
# ▁<SUF> suffix-without-leading-space ▁<MID>, the middle ends with ▁<EOT>; SPM: <s> ▁<PRE> ▁<SUF> ...).
FAMILIES: tuple[FimFormat, ...] = (
    FimFormat(
        "starcoder",
        FIM_PREFIX,
        FIM_SUFFIX,
        FIM_MIDDLE,
        pad=FIM_PAD,
        orders=("psm", "spm"),
        file_sep="<file_sep>",
        repo_name="<repo_name>",
    ),
    FimFormat(
        "santacoder", "<fim-prefix>", "<fim-suffix>", "<fim-middle>", pad="<fim-pad>", orders=("psm", "spm")
    ),
    FimFormat(
        "codegemma",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        orders=("psm", "spm"),
        eot="<|file_separator|>",
        bos=True,
        file_sep="<|file_separator|>",
        requires=("<|file_separator|>",),
    ),
    FimFormat(
        "qwen2.5-coder",
        "<|fim_prefix|>",
        "<|fim_suffix|>",
        "<|fim_middle|>",
        pad="<|fim_pad|>",
        file_sep="<|file_sep|>",
        repo_name="<|repo_name|>",
        path_in_header=True,
    ),
    FimFormat("deepseek-coder", "<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>", bos=True),
    FimFormat(
        "codellama",
        "▁<PRE>",
        "▁<SUF>",
        "▁<MID>",
        orders=("psm", "spm"),
        eot="▁<EOT>",
        bos=True,
        suffix_space=False,
    ),
)


def known_families() -> str:
    """The families :func:`fim_ids` recognises, with their prefix token, for error messages."""
    return ", ".join(f"{f.family} ({f.prefix})" for f in FAMILIES)


def no_fim_tokens(tokenizer: Any, need: str) -> str:
    """The one-line error for a tokenizer without the FIM tokens of a known family: what needs them
    (``need``), which tokenizer it was, the families known and the fixes."""
    name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
    return (
        f"{need} needs fill-in-the-middle tokens, but the tokenizer {name} has no FIM tokens of a known "
        f"family ({known_families()}); use a model whose tokenizer has them, or train one with "
        "'python -m gitnetic tokenizer --fim_tokens true' (then preprocess again)"
    )


def detect_fim_format(vocab: Mapping[str, int] | Iterable[str]) -> FimFormat | None:
    """The first family of :data:`FAMILIES` whose sentinels are all in ``vocab``; None if none is."""
    names = vocab if isinstance(vocab, Mapping) else set(vocab)
    for fmt in FAMILIES:
        if all(t in names for t in (fmt.prefix, fmt.suffix, fmt.middle, *fmt.requires)):
            return fmt
    return None


@dataclass(frozen=True)
class FimIds:
    """A FIM format resolved against one tokenizer: its sentinel ids and what else the layout needs.

    The defaults are StarCoder's names in a gitnetic-trained tokenizer (no <s> before prompts, SPM too)."""

    prefix: int
    middle: int
    suffix: int
    pad: int | None = None
    eot: int | None = None  # appended after a training middle and a stop token at inference
    bos: int | None = None  # starts inference prompts
    spm: bool = True  # SPM sequences are part of the family's training
    family: str = "starcoder"
    file_sep: int | None = None
    repo_name: int | None = None
    suffix_space: bool = True
    path_in_header: bool = False

    @property
    def sentinels(self) -> int:
        """Tokens a FIM'd training document gains (its last ones make room for them)."""
        return 3 + (self.eot is not None)

    @property
    def prompt_overhead(self) -> int:
        """Tokens an infill prompt holds besides prefix and suffix."""
        return 3 + (self.bos is not None)


def fim_ids(tokenizer: Any) -> FimIds | None:
    """The FIM ids of a tokenizer (HF, or anything with ``get_vocab``); None without a known family."""
    vocab = tokenizer.get_vocab()
    fmt = detect_fim_format(vocab)
    if fmt is None:
        return None

    def opt(token: str | None) -> int | None:
        return int(vocab[token]) if token is not None and token in vocab else None

    bos = getattr(tokenizer, "bos_token_id", None) if fmt.bos else None
    return FimIds(
        prefix=int(vocab[fmt.prefix]),
        middle=int(vocab[fmt.middle]),
        suffix=int(vocab[fmt.suffix]),
        pad=opt(fmt.pad),
        eot=opt(fmt.eot),
        bos=None if bos is None else int(bos),
        spm=fmt.spm,
        family=fmt.family,
        file_sep=opt(fmt.file_sep),
        repo_name=opt(fmt.repo_name),
        suffix_space=fmt.suffix_space,
        path_in_header=fmt.path_in_header,
    )


def fim_pieces(
    ids: FimIds, prefix: Sequence[int], suffix: Sequence[int], spm: bool = False
) -> list[Sequence[int]]:
    """The pieces of a FIM sequence up to where the middle starts, in the family's order (the one layout
    function: training concatenates the middle after them, inference generates it):

    PSM ``[prefix] P [suffix] S [middle]``; SPM ``[prefix] [suffix] S [middle] P``."""
    if spm:
        return [[ids.prefix, ids.suffix], suffix, [ids.middle], prefix]
    return [[ids.prefix], prefix, [ids.suffix], suffix, [ids.middle]]


def infill_prompt(
    ids: FimIds, prefix: Sequence[int], suffix: Sequence[int], context: Sequence[int] = ()
) -> list[int]:
    """The ids an infilling model gets: the family's ``<s>`` if it uses one, ``context`` (e.g. the
    repository-level header of :func:`repo_context`), then the PSM layout of :func:`fim_pieces` (PSM:
    the first layout of every family)."""
    head = [ids.bos] if ids.bos is not None else []
    return [*head, *map(int, context), *(int(t) for piece in fim_pieces(ids, prefix, suffix) for t in piece)]


def repo_context(
    ids: FimIds,
    encode: Callable[[str], Sequence[int]],
    repo: str | None,
    path: str | None,
    other_files: Sequence[tuple[str, str]] = (),
) -> list[int]:
    """The ids before a file's FIM sequence in the family's repository-level format; ``[]`` when the
    family has no such tokens. ``encode`` encodes plain text (special-token strings in names or code
    stay text: only the family's own ids are control tokens).

    StarCoder2 ``<repo_name>R<file_sep>p1\\nT1<file_sep>PATH\\n`` (whose ``PATH\\n`` a FIM layout puts in
    the prefix: :func:`split_context`); Qwen2.5-Coder
    ``<|repo_name|>R\\n<|file_sep|>p1\\nT1\\n<|file_sep|>PATH\\n``; CodeGemma (a separator, no names)
    ``T1<|file_separator|>``. ``other_files`` are ``(path, text)`` of files of the same repository."""
    if ids.file_sep is None:
        return []
    out: list[int] = []

    def text(value: str) -> None:
        out.extend(int(i) for i in encode(value))

    if ids.repo_name is None:  # files separated, no names (CodeGemma)
        for _, body in other_files:
            text(body)
            out.append(ids.file_sep)
        return out
    newline = "\n" if ids.family == "qwen2.5-coder" else ""
    if repo is not None:
        out.append(ids.repo_name)
        text(repo + newline)
    for other, body in other_files:
        out.append(ids.file_sep)
        text(other + "\n" + body + (newline if newline and not body.endswith("\n") else ""))
    if path is not None:
        out.append(ids.file_sep)
        text(path + "\n")
    return out


def header_length(tokens: np.ndarray, ids: FimIds, newline: np.ndarray | None = None) -> int:
    """How many leading tokens of a document (or of the piece of one a training sample holds) are its
    repository header, which a FIM layout keeps in front of ``<fim_prefix>``; 0 without one.

    Exact without a side index because only a header holds the family's ``repo_name``/``file_sep`` ids
    (text never encodes to them): the header runs to the last of them (StarCoder2, whose path line is
    the start of the FIM'd chunk), or (Qwen2.5-Coder, ``path_in_header``) to the first token after it that
    holds a newline, per ``newline`` (:func:`newline_mask`), which ends ``PATH\\n`` because preprocess
    writes no header for a path with a line break. A piece that ends inside a header is all header."""
    if ids.repo_name is None or ids.file_sep is None or not len(tokens):
        return 0
    marks = np.flatnonzero((tokens == ids.repo_name) | (tokens == ids.file_sep))
    if not marks.size:
        return 0
    end = int(marks[-1]) + 1
    if not ids.path_in_header:
        return end
    if newline is None:
        raise ValueError(f"{ids.family} headers end at a newline: pass the tokenizer's newline_mask")
    rest = np.asarray(tokens[end:], dtype=np.int64)
    held = newline[np.clip(rest, 0, len(newline) - 1)] & (rest < len(newline))
    at = np.flatnonzero(held)
    return end + int(at[0]) + 1 if at.size else len(tokens)


def split_context(ids: FimIds, context: Sequence[int], path: str | None) -> tuple[list[int], list[int]]:
    """:func:`repo_context`'s ids (for a file at ``path``) as ``(before <fim_prefix>, start of the
    prefix)``: StarCoder2 puts the file's ``PATH\\n`` after ``<fim_prefix>``
    (``<file_sep><fim_prefix>PATH\\nP``), the others all of the context before."""
    context = [int(t) for t in context]
    if path is None or ids.path_in_header or ids.file_sep is None or ids.repo_name is None:
        return context, []
    end = header_length(np.asarray(context, dtype=np.int64), ids)
    return context[:end], context[end:]


def newline_mask(tokenizer: Any) -> np.ndarray:
    """``mask[id]``: token ``id`` decodes to text holding a newline (what :func:`header_length` needs for
    families whose header ends with the path's newline)."""
    size = len(tokenizer)
    texts = tokenizer.batch_decode([[i] for i in range(size)], clean_up_tokenization_spaces=False)
    return np.fromiter(("\n" in text for text in texts), dtype=bool, count=size)
