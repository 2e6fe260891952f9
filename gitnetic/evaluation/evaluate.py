"""Held-out evaluation of a checkpoint: token-weighted loss/perplexity next to a unigram baseline.

Loss is token-weighted (summed NLL / predicted tokens), so it doesn't depend on how documents were
batched. The unigram perplexity on the same predicted tokens is the "learned nothing but frequencies"
bar: a model that does not beat it has not learned anything from context.

A weighted blend (``0.8 data/bin/test-code 0.2 data/bin/test-commits``, the training syntax, parsed by
the same :func:`gitnetic.data.loading.blend.parse_blend`) scores every prefix whole: the overall metrics are
token-weighted over all of them (the weights do not enter: every held-out token counts once) and
``per_source`` holds each prefix's own, so a model that is good on code but poor on commit messages
shows it. A single prefix gives exactly the metrics it always did, without ``per_source``.

Why it is built on the training code: scoring runs the very ``TransformerModule`` that training ran
(its objective resolver, MLM masking, label shifting and loss), over batches planned by
:mod:`gitnetic.data.loading.batching` and padded by its ``collate_padded``. Only what is evaluation's own lives
here: cutting documents into windows, and the unigram baseline.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.common.threads import set_torch_threads
from gitnetic.data.loading.batching import collate_padded, max_tokens_batches, packed_batches
from gitnetic.data.loading.blend import ConcatTokens, parse_blend
from gitnetic.data.shards.indexed import IndexedDataset, check_token_ids
from gitnetic.evaluation.completion import completion_metrics
from gitnetic.evaluation.params import EvaluateParams
from gitnetic.models.checkpoint import TrainedModel, load_trained_model
from gitnetic.models.positions import check_positions, position_limit
from gitnetic.modules.objective import IGNORE_INDEX
from gitnetic.modules.transformer_module import TransformerModule, token_cross_entropy

__all__ = ["EvaluateParams", "Windows", "evaluate", "unigram_log_probs"]

logger = logging.getLogger(__name__)


def _window_length(requested: int, config: Any, source: str) -> int:
    """``--max_length``, checked against the model's position table (0 picks the largest that fits)."""
    if requested == 0:
        size, offset = position_limit(config)
        return min(1024, size - offset) if size else 1024
    if requested < 2:
        raise ConfigError(f"--max_length must be at least 2, got {requested}")
    check_positions(config, requested, source)
    return requested


class Windows:
    """Every document cut into windows of at most ``max_length`` tokens, as an indexable dataset.

    CLM windows overlap by one token (``overlap=1``) so each token after a document's first is predicted
    exactly once; documents of ``overlap`` tokens or fewer have nothing to predict and are skipped.
    Only ``(document, start, length)`` triples are kept; tokens stay memory-mapped.
    """

    def __init__(self, dataset: Any, max_length: int, overlap: int, max_documents: int = 0) -> None:
        self.dataset = dataset
        step = max_length - overlap
        n = len(dataset) if not max_documents else min(len(dataset), max_documents)
        docs, starts, lengths = [], [], []
        for i, size in enumerate(np.asarray(dataset.sizes[:n], dtype=np.int64).tolist()):
            if size <= overlap:
                continue
            for start in range(0, max(size - overlap, 1), step):
                length = min(max_length, size - start)
                if length > overlap:
                    docs.append(i)
                    starts.append(start)
                    lengths.append(length)
        self.docs = np.asarray(docs, dtype=np.int64)
        self.starts = np.asarray(starts, dtype=np.int64)
        self.sizes = np.asarray(lengths, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.sizes)

    def __getitem__(self, i: int) -> np.ndarray:
        start = int(self.starts[i])
        return self.dataset[int(self.docs[i])][start : start + int(self.sizes[i])]


def _plan(windows: Windows, batch_size: int, max_tokens: int, max_length: int) -> list[np.ndarray]:
    """Batches of window indices, in order: ``batch_size`` at a time, or ``max_tokens`` length buckets."""
    if max_tokens:
        return max_tokens_batches(windows.sizes, max_tokens, max_length, batch_size, shuffle=False)
    return packed_batches(len(windows), batch_size, shuffle=False)


def unigram_log_probs(dataset: Any, vocab_size: int) -> Any:
    """Add-one smoothed unigram log-probabilities from every token of ``dataset``."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    chunk: list[Any] = []
    size = 0
    for i in range(len(dataset)):
        doc = dataset[i]
        chunk.append(doc)
        size += len(doc)
        if size >= 1 << 22:
            counts += np.bincount(np.concatenate(chunk), minlength=vocab_size)[:vocab_size]
            chunk, size = [], 0
    if chunk:
        counts += np.bincount(np.concatenate(chunk), minlength=vocab_size)[:vocab_size]
    counts += 1
    return np.log(counts) - math.log(counts.sum())


def _open_prefixes(spec: str) -> tuple[list[tuple[float, str]], list[Any]]:
    """The ``(weight, prefix)`` pairs of a prefix or blend spec and their datasets (one error if one is missing)."""
    blend = parse_blend(spec)
    return blend, [IndexedDataset(prefix) for _, prefix in blend]


def _concat(datasets: list[Any]) -> Any:
    return datasets[0] if len(datasets) == 1 else ConcatTokens(datasets)


def _scores(nll: float, uni: float, tokens: int) -> dict[str, Any]:
    """Loss, perplexity and the unigram baseline from summed NLLs over ``tokens`` predicted tokens."""
    if not tokens:
        return {
            "loss": None,
            "perplexity": None,
            "tokens": 0,
            "unigram_loss": None,
            "unigram_perplexity": None,
        }
    return {
        "loss": nll / tokens,
        "perplexity": _safe_exp(nll / tokens),
        "tokens": tokens,
        "unigram_loss": uni / tokens,
        "unigram_perplexity": _safe_exp(uni / tokens),
    }


def evaluate(params: EvaluateParams) -> dict[str, Any]:
    """Score ``params.data_prefix`` (one prefix or a blend) with the checkpoint; returns the metrics dict."""
    set_torch_threads(params.num_threads)
    trained = load_trained_model(params.checkpoint, params.config_path, params.tokenizer_path)
    # the training module scores: its objective rule (the config's objective fills auto), masking, loss
    module = TransformerModule(
        trained.model,
        trained.tokenizer,
        TransformerModule.Params(objective=params.objective, mlm_probability=params.mlm_probability),
        model_config=trained.config,
    )
    max_length = _window_length(params.max_length, trained.model.config, trained.config.source)
    blend, datasets = _open_prefixes(params.data_prefix)
    vocab = int(trained.model.config.vocab_size)
    counted = _concat(_open_prefixes(params.train_prefix)[1] if params.train_prefix else datasets)
    unigram = torch.from_numpy(unigram_log_probs(counted, vocab))
    generator = torch.Generator().manual_seed(params.seed)  # one stream over the run: a fixed masking
    totals = {"nll": 0.0, "uni": 0.0, "tokens": 0}
    per_source: dict[str, dict[str, Any]] = {}
    for (weight, prefix), dataset in zip(blend, datasets, strict=True):
        windows = Windows(dataset, max_length, 1 if module.objective == "clm" else 0, params.max_documents)
        batches = _plan(windows, params.batch_size, params.max_tokens, max_length)
        scored = _score_windows(module, windows, batches, unigram, generator, prefix)
        per_source[prefix] = {**_scores(scored["nll"], scored["uni"], scored["tokens"]), "weight": weight}
        if not scored["tokens"] and len(blend) > 1:
            logger.warning("evaluate: no tokens to score in %s (empty or too short documents)", prefix)
        totals = {key: totals[key] + scored[key] for key in totals}
    if totals["tokens"] == 0:
        raise DataError(
            f"no tokens to score in {params.data_prefix} (documents too short or empty); check the preprocess stage"
        )
    metrics = {
        **_scores(totals["nll"], totals["uni"], totals["tokens"]),
        "objective": module.objective,
        "checkpoint": trained.path,
        "global_step": trained.global_step,
        "data_prefix": params.data_prefix,
        **_completion(params, trained, _concat(datasets), module.objective),
    }
    if len(blend) > 1:  # a single prefix keeps the metrics file it always had
        metrics["per_source"] = per_source
    return metrics


def _score_windows(
    module: TransformerModule,
    windows: Windows,
    batches: list[np.ndarray],
    unigram: torch.Tensor,
    generator: torch.Generator,
    prefix: str,
) -> dict[str, Any]:
    """Summed model and unigram NLL (``nll``, ``uni``) over the predicted ``tokens`` of ``windows``."""
    tokenizer = module.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    vocab = int(module.model.config.vocab_size)
    nll, uni, tokens = 0.0, 0.0, 0
    with torch.inference_mode():
        for indices in tqdm(batches, desc="evaluate", disable=None):
            batch = collate_padded([windows[int(i)] for i in indices], pad_id)
            check_token_ids(
                prefix, int(batch["input_ids"].max()), vocab, "score shards made with the training tokenizer"
            )
            logits, labels = module.logits_and_labels(batch, generator)
            keep = labels != IGNORE_INDEX
            gold = labels[keep]
            if not gold.numel():
                continue
            # scored positions only: the sum then runs over the same rows in the same order as it always
            # has, so metrics stay bit-for-bit comparable with earlier runs
            nll += float(token_cross_entropy(logits[keep], gold))
            uni -= float(unigram[gold].sum())
            tokens += int(gold.numel())
    return {"nll": nll, "uni": uni, "tokens": tokens}


def _completion(
    params: EvaluateParams, trained: TrainedModel, dataset: Any, objective: str
) -> dict[str, Any]:
    """Next-line / infilling exact match (gitnetic/evaluation/completion.py) on the documents of every
    scored prefix (in blend order); causal LMs only."""
    if objective != "clm":
        if params.completion_samples:
            logger.info(
                "completion metrics skipped: they need a causal LM, this one is scored as %s", objective
            )
        return {}
    return completion_metrics(
        trained.model,
        trained.tokenizer,
        dataset,
        params.completion_samples,
        seed=params.completion_seed,
        max_context=params.completion_max_context,
        max_documents=params.max_documents,
    )


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")
