"""Code-completion metrics on held-out code: greedy next-line and single-line infilling exact match.

Perplexity says how well a model predicts every token; an editor user judges it by whether the line it
proposes is the line they meant. Two metrics measure that on the test split's own documents:

* **next-line exact match**: the model sees the code before a line (up to its context window) and
  writes greedily until it emits a newline; a hit when the written line, stripped of surrounding
  whitespace, equals the real line stripped.
* **infilling exact match** (SantaCoder's single-line infilling, Allal et al. 2023), only for a model
  whose tokenizer has the FIM tokens: one line is masked, the model sees the code before and after it in
  the PSM prompt of :mod:`gitnetic.inference.generate` (docs/fim.md) and writes the middle until
  ``</s>`` or a newline; scored as above.
* **edit similarity** of both (``*_edit_similarity``; CodeXGLUE's line-level completion reports an edit
  similarity next to exact match): ``difflib.SequenceMatcher``'s ratio of the written and the real line
  (stripped), averaged; small models that never get a whole line right still show progress there.

How positions are chosen. Evaluate reads MMIDIDX shards (no text), so lines are found in token space:
a line starts right after a token whose text holds a newline and ends at the next such token. With
byte-level BPE a newline only ever sits in a whitespace-only token (``"\\n"``, ``"\\n    "``), so the
prompt is exactly the tokens training saw, cut where FIM training cuts, with no re-tokenization
artefacts at the cut. A line is a candidate when it is not blank and at most ``LINE_TOKENS`` tokens
long (fewer for a model whose window cannot hold a context and twice that: ``line_tokens``); the candidates of all scored documents are shuffled by ``numpy.random.default_rng(seed)`` and the
first ``samples`` are taken, so a seed always picks the same lines and both metrics score the same lines.

Decoding reuses :class:`gitnetic.inference.generate.Generator` (transformers' ``generate``, greedy), so
the metrics measure what ``python -m gitnetic generate --greedy`` would print.
"""

from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from gitnetic.data.tokenizer.fim_tokens import FimIds, header_length
from gitnetic.evaluation.params import MIN_CONTEXT, MIN_LINE_TOKENS, check_completion_params
from gitnetic.inference.generate import Generator
from gitnetic.inference.params import DecodingParams
from gitnetic.models.positions import usable_positions

__all__ = [
    "LINE_TOKENS",
    "MIN_CONTEXT",
    "MIN_LINE_TOKENS",
    "Line",
    "completion_metrics",
    "line_tokens",
    "newline_token_mask",
    "sample_lines",
]

logger = logging.getLogger(__name__)

# Longest line (in tokens) that is sampled; generation stops one token later (room for the newline), so
# a line is never cut short by the cap. 32 covers nearly all lines of Python with an 8k vocabulary.
LINE_TOKENS = 32


@dataclass(frozen=True)
class Line:
    """One sampled line of a held-out document, in token positions.

    ``start`` is the first token after a newline-holding token, ``end`` the newline-holding token that
    ends the line; ``text`` is the line as the file has it between those newlines, stripped.
    """

    document: int
    start: int
    end: int
    text: str


def newline_token_mask(tokenizer: Any, vocab_size: int) -> np.ndarray:
    """``mask[id]`` is True when token ``id`` decodes to text holding a newline."""
    mask = np.zeros(vocab_size, dtype=bool)
    known = min(vocab_size, len(tokenizer))
    texts = tokenizer.batch_decode([[i] for i in range(known)], clean_up_tokenization_spaces=False)
    mask[:known] = ["\n" in text for text in texts]
    return mask


def _line_text(tokenizer: Any, tokens: np.ndarray) -> str:
    """The text of ``tokens`` (a line plus the newline-holding token ending it) up to the first newline."""
    text = tokenizer.decode(tokens.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False)
    return text.split("\n", 1)[0].strip()


def sample_lines(
    dataset: Any,
    tokenizer: Any,
    newline: np.ndarray,
    samples: int,
    seed: int,
    max_documents: int = 0,
    max_line_tokens: int = LINE_TOKENS,
    fim: FimIds | None = None,
) -> list[Line]:
    """Up to ``samples`` non-blank lines of at most ``max_line_tokens`` tokens, picked by ``seed``.

    Every candidate of every document (the first ``max_documents`` when non-zero) is listed, shuffled by
    one ``numpy`` generator seeded with ``seed``, and taken in that order, skipping blank lines: the same
    seed and data always give the same lines, in the same order. With ``fim`` (the tokenizer's FIM ids),
    no line starts inside a document's repository header (preprocess ``--repo_context``).
    """
    eos = tokenizer.eos_token_id
    n_docs = len(dataset) if not max_documents else min(len(dataset), max_documents)
    docs, starts, ends = [], [], []
    for d in range(n_docs):
        tokens = np.asarray(dataset[d], dtype=np.int64)
        if len(tokens) < 3:
            continue
        nl = newline[np.clip(tokens, 0, len(newline) - 1)] & (tokens < len(newline))
        at = np.flatnonzero(nl)  # positions of newline-holding tokens
        if len(at) < 2:
            continue
        begin = at[:-1] + 1  # a line starts after one newline token and ends at the next one
        stop = at[1:]
        keep = (stop > begin) & (stop - begin <= max_line_tokens)
        if fim is not None:
            keep &= begin >= header_length(tokens, fim, newline)
        if eos is not None:
            keep &= tokens[begin] != eos
        docs.append(np.full(int(keep.sum()), d, dtype=np.int64))
        starts.append(begin[keep])
        ends.append(stop[keep])
    if not docs:
        return []
    doc_of, start_of, end_of = (np.concatenate(a) for a in (docs, starts, ends))
    order = np.random.default_rng(seed).permutation(len(doc_of))
    lines: list[Line] = []
    for k in order.tolist():
        d, start, end = int(doc_of[k]), int(start_of[k]), int(end_of[k])
        text = _line_text(tokenizer, np.asarray(dataset[d][start : end + 1]))
        if text:
            lines.append(Line(d, start, end, text))
            if len(lines) == samples:
                break
    return lines


def _window(model: Any, max_context: int) -> int:
    """Tokens the model sees per prompt, generated ones included: ``max_context`` (at most its position
    table) or its position table (1024 when it has none)."""
    limit = usable_positions(model.config)
    if max_context and limit is not None and max_context > limit:
        logger.warning(
            "completion: --completion_max_context %d is more than the model's %d positions; using %d",
            max_context,
            limit,
            limit,
        )
    return min(max_context or limit or 1024, limit or 1 << 62)


def line_tokens(window: int) -> int:
    """Longest line sampled for a prompt ``window``: ``LINE_TOKENS``, or less when the window cannot
    hold an infill prompt (three sentinels, the line plus its end) with as much code around it."""
    return min(LINE_TOKENS, (window - 3) // 2 - 1)


def _context(tokens: np.ndarray, start: int, budget: int, eos: int | None) -> list[int]:
    """The ``budget`` tokens before ``start``; a document's beginning gets the ``</s>`` training put there."""
    before = tokens[:start].tolist()
    if eos is not None and len(before) < budget:
        return [int(eos), *before]
    return before[len(before) - budget :]


def _fim_parts(
    tokens: np.ndarray, line: Line, budget: int, eos: int | None, start: int = 0
) -> tuple[list[int], list[int]]:
    """Prefix and suffix tokens around ``line`` within ``budget`` together: half each, the rest to the
    side that needs it; the prefix (from ``start``, after a repository header) keeps its end, the suffix
    its beginning (the code nearest the gap)."""
    prefix = tokens[start : line.start].tolist()
    end = len(tokens) - 1 if eos is not None and len(tokens) and tokens[-1] == eos else len(tokens)
    suffix = tokens[line.end : end].tolist()  # from the newline that ends the line; no trailing </s>
    n_pre = min(len(prefix), max(budget // 2, budget - len(suffix)))
    n_suf = min(len(suffix), budget - n_pre)
    return prefix[len(prefix) - n_pre :], suffix[:n_suf]


def _score(generation: Any, max_new: int, expected: str) -> tuple[bool, float]:
    """``(exact match, edit similarity)`` of one generated line against the real one (both stripped).

    Exact match also needs the model to have ended the line (a newline, or ``</s>`` which ``Generator``
    drops) rather than run into the cap. Edit similarity is ``difflib.SequenceMatcher.ratio`` of whatever
    line it wrote (ended or not): partial credit that moves before exact matches do.
    """
    ended = "\n" in generation.text or generation.new_tokens < max_new
    line = generation.text.split("\n", 1)[0].strip()
    return ended and line == expected, difflib.SequenceMatcher(None, line, expected).ratio()


def completion_metrics(
    model: Any,
    tokenizer: Any,
    dataset: Any,
    samples: int,
    seed: int = 0,
    max_context: int = 0,
    max_documents: int = 0,
) -> dict[str, Any]:
    """``next_line_{exact_match,edit_similarity,samples}`` and, when the tokenizer has the FIM tokens,
    ``infill_{exact_match,edit_similarity,samples}`` on up to ``samples`` lines of ``dataset`` (shards).

    ``samples`` 0 returns ``{}``. Runs on the CPU, greedily, so the figures are reproducible.
    """
    check_completion_params(samples, max_context)
    if samples == 0:
        return {}
    window = _window(model, max_context)
    if window < MIN_CONTEXT:
        logger.warning(
            "completion metrics skipped: the model has %d positions, they need at least %d",
            window,
            MIN_CONTEXT,
        )
        return {}
    max_line = line_tokens(window)
    generator = Generator(model, tokenizer, device="cpu")
    newline = newline_token_mask(tokenizer, int(model.config.vocab_size))
    lines = sample_lines(dataset, tokenizer, newline, samples, seed, max_documents, max_line, generator.fim)
    metrics: dict[str, Any] = {"next_line_samples": len(lines)}
    if generator.fim is not None:
        metrics["infill_samples"] = len(lines)
    if not lines:
        logger.warning("completion metrics: no line of at most %d tokens in the scored documents", max_line)
        return metrics
    max_new = max_line + 1
    decode = DecodingParams(greedy=True, max_new_tokens=max_new)
    stop_ids = np.flatnonzero(newline).tolist()
    eos = tokenizer.eos_token_id
    scores: dict[str, list[tuple[bool, float]]] = {"next_line": [], "infill": []}
    for line in tqdm(lines, desc="completion", disable=None):
        tokens = np.asarray(dataset[line.document], dtype=np.int64)
        prompt = _context(tokens, line.start, window - max_new, eos)
        generation = generator.run(prompt, decode, stop_ids=stop_ids)
        scores["next_line"].append(_score(generation, max_new, line.text))
        if generator.fim is not None:
            budget = window - max_new - generator.fim.prompt_overhead  # 3 sentinels (+ <s>)
            # a repository header (preprocess --repo_context) goes before <fim_prefix>, as in training
            head = header_length(tokens, generator.fim, newline)
            context = tokens[:head].tolist() if head <= budget // 2 else []  # leaves room for the code
            prefix, suffix = _fim_parts(tokens, line, budget - len(context), eos, start=head)
            prompt = generator.infill_token_ids(prefix, suffix, context)
            generation = generator.run(prompt, decode, stop_ids=stop_ids)
            scores["infill"].append(_score(generation, max_new, line.text))
    for kind, pairs in scores.items():
        if pairs:
            metrics[f"{kind}_exact_match"] = sum(hit for hit, _ in pairs) / len(pairs)
            metrics[f"{kind}_edit_similarity"] = sum(sim for _, sim in pairs) / len(pairs)
    return metrics
