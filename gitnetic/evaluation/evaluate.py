"""Held-out evaluation of a checkpoint: token-weighted loss/perplexity next to a unigram baseline.

Loss is token-weighted (summed NLL / predicted tokens), so it doesn't depend on how documents were
batched. The unigram perplexity on the same predicted tokens is the "learned nothing but frequencies"
bar: a model that does not beat it has not learned anything from context.

A weighted blend (``0.8 data/bin/test-code 0.2 data/bin/test-commits``, the training syntax, parsed by
the same :func:`gitnetic.data.loading.blend.parse_blend`) scores every prefix whole: the overall metrics are
token-weighted over all of them (the weights do not enter: every held-out token counts once) and
``per_source`` holds each prefix's own, so a model that is good on code but poor on commit messages
shows it. A single prefix gives exactly the metrics it always did, without ``per_source``.

**Bits per byte** (``bits_per_byte``, next to perplexity; ``unigram_bits_per_byte`` next to the baseline):
the summed loss in nats over every scored token, divided by ln 2 times the UTF-8 bytes of the text those
very tokens spell (``bytes``). Perplexity per token changes with the tokenizer (``init`` grows the
vocabulary with the corpus, a pretrained model brings its own); bits per byte does not, so models with
different tokenizers, and published code-model figures, compare on it. "The text scored" is exactly
that: a causal LM never predicts a document's first token, so its bytes are not counted, while the
``</s>`` after each document is scored (where a file ends is information too) and stands for 0 bytes;
``--max_documents`` counts only the documents it scores. Each token's bytes come from the tokenizer's
vocabulary (:mod:`gitnetic.data.token_bytes`), so neither the corpus nor the shards are read again.
Training's validation logs the same ratio, ``val/bits_per_byte``, over the validation split.
A masked LM gets none: its loss covers a random 15 % of tokens, each guessed from both sides, which is
not a code length of the text, and the share of the text masked grows with the tokenizer's token length,
so the number would not compare across tokenizers, the one thing bits per byte is for.

**Before/after** (``base``): for a fine-tune (train's ``--init_from``, which the checkpoint records), the
model the run started from is scored on the very same windows, batches and masks, after the tuned
model (one model in memory at a time), and its loss, perplexity and bits per byte go under ``base``.

Why it is built on the training code: scoring runs the very ``TransformerModule`` that training ran
(its objective resolver, MLM masking, label shifting and loss), over batches planned by
:mod:`gitnetic.data.loading.batching` and padded by its ``collate_padded``. Only what is evaluation's own lives
here: cutting documents into windows, and the unigram baseline.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.common.threads import set_torch_threads
from gitnetic.data.loading.batching import collate_padded, max_tokens_batches, packed_batches
from gitnetic.data.loading.blend import ConcatTokens, parse_blend
from gitnetic.data.shards.indexed import IndexedDataset, check_token_ids
from gitnetic.data.token_bytes import token_byte_lengths
from gitnetic.evaluation.completion import completion_metrics
from gitnetic.evaluation.params import EvaluateParams
from gitnetic.models.checkpoint import TrainedModel, load_trained_model
from gitnetic.models.config import ModelConfig
from gitnetic.models.positions import check_positions, position_limit
from gitnetic.models.pretrained import load_hf_model
from gitnetic.modules.objective import IGNORE_INDEX
from gitnetic.modules.transformer_module import TransformerModule, token_cross_entropy
from gitnetic.training.resume import FINGERPRINT_KEY

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


def _scores(nll: float, uni: float, tokens: int, nbytes: int | None = None) -> dict[str, Any]:
    """Loss, perplexity and the unigram baseline from summed NLLs over ``tokens`` predicted tokens; with
    ``nbytes`` (the UTF-8 bytes those tokens spell; None for a masked LM) bits per byte beside each."""
    loss, uni_loss = (nll / tokens, uni / tokens) if tokens else (None, None)
    scores: dict[str, Any] = {"loss": loss, "perplexity": _safe_exp(loss) if tokens else None}
    if nbytes is not None:
        scores["bits_per_byte"] = _bits_per_byte(nll, nbytes) if tokens else None
    scores["tokens"] = tokens
    if nbytes is not None:
        scores["bytes"] = nbytes
    scores |= {"unigram_loss": uni_loss, "unigram_perplexity": _safe_exp(uni_loss) if tokens else None}
    if nbytes is not None:
        scores["unigram_bits_per_byte"] = _bits_per_byte(uni, nbytes) if tokens else None
    return scores


def _bits_per_byte(nll: float, nbytes: int) -> float | None:
    """Summed NLL in nats over ln 2 x bytes: the bits per byte of text a compressor built on the model
    would spend (None when the scored tokens spell no text, e.g. only ``</s>``)."""
    return nll / (math.log(2) * nbytes) if nbytes else None


def evaluate(params: EvaluateParams) -> dict[str, Any]:
    """Score ``params.data_prefix`` (one prefix or a blend) with the checkpoint; returns the metrics dict."""
    set_torch_threads(params.num_threads)
    trained = load_trained_model(params.checkpoint, params.config_path, params.tokenizer_path)
    base_folder = _base_model(params.base_model, trained)  # before scoring: a bad folder fails at once
    # the training module scores: its objective rule (the config's objective fills auto), masking, loss
    module = _module(trained.model, trained.tokenizer, trained.config, params)
    max_length = _window_length(params.max_length, trained.model.config, trained.config.source)
    blend, datasets = _open_prefixes(params.data_prefix)
    vocab = int(trained.model.config.vocab_size)
    counted = _concat(_open_prefixes(params.train_prefix)[1] if params.train_prefix else datasets)
    unigram = torch.from_numpy(unigram_log_probs(counted, vocab))
    # bytes of text per token id: bits per byte, for causal LMs only (see the module doc)
    byte_lengths = (
        torch.from_numpy(token_byte_lengths(trained.tokenizer, vocab)) if module.objective == "clm" else None
    )
    plans = []
    for (weight, prefix), dataset in zip(blend, datasets, strict=True):
        windows = Windows(dataset, max_length, 1 if module.objective == "clm" else 0, params.max_documents)
        plans.append(
            (weight, prefix, windows, _plan(windows, params.batch_size, params.max_tokens, max_length))
        )
    scored = _score_plans(module, plans, unigram, byte_lengths, params.seed)
    if scored["all"]["tokens"] == 0:
        raise DataError(
            f"no tokens to score in {params.data_prefix} (documents too short or empty); check the preprocess stage"
        )
    for prefix, part in scored["per_source"].items():
        if not part["tokens"] and len(blend) > 1:
            logger.warning("evaluate: no tokens to score in %s (empty or too short documents)", prefix)
    metrics = {
        **scored["all"],
        "objective": module.objective,
        "checkpoint": trained.path,
        "global_step": trained.global_step,
        "data_prefix": params.data_prefix,
        **_completion(params, trained, _concat(datasets), module.objective),
    }
    if len(blend) > 1:  # a single prefix keeps the metrics file it always had
        metrics["per_source"] = scored["per_source"]
    if base_folder is not None:
        objective, tokenizer = module.objective, trained.tokenizer
        del module, trained  # one model in memory at a time
        base = _base_module(base_folder, tokenizer, vocab, max_length, objective, params)
        before = _score_plans(base, plans, unigram, byte_lengths, params.seed)
        metrics["base"] = {"model": base_folder, **_headline(before["all"])}
        if len(blend) > 1:
            metrics["base"]["per_source"] = {k: _headline(v) for k, v in before["per_source"].items()}
    return metrics


def _module(model: Any, tokenizer: Any, config: ModelConfig, params: EvaluateParams) -> TransformerModule:
    return TransformerModule(
        model,
        tokenizer,
        TransformerModule.Params(objective=params.objective, mlm_probability=params.mlm_probability),
        model_config=config,
    )


def _score_plans(
    module: TransformerModule,
    plans: list[tuple[float, str, Windows, list[np.ndarray]]],
    unigram: torch.Tensor,
    byte_lengths: torch.Tensor | None,
    seed: int,
) -> dict[str, Any]:
    """``all`` (token-weighted over every prefix) and ``per_source`` scores of ``module`` on ``plans``.

    One masking stream over the run, seeded afresh here: every model scored gets the same masks."""
    generator = torch.Generator().manual_seed(seed)
    totals = {"nll": 0.0, "uni": 0.0, "tokens": 0, "bytes": 0}
    per_source: dict[str, dict[str, Any]] = {}
    for weight, prefix, windows, batches in plans:
        part = _score_windows(module, windows, batches, unigram, byte_lengths, generator, prefix)
        per_source[prefix] = {**_scores(*_sums(part, byte_lengths)), "weight": weight}
        totals = {key: totals[key] + part[key] for key in totals}
    return {"all": _scores(*_sums(totals, byte_lengths)), "per_source": per_source}


def _sums(part: dict[str, Any], byte_lengths: torch.Tensor | None) -> tuple[float, float, int, int | None]:
    return part["nll"], part["uni"], part["tokens"], None if byte_lengths is None else part["bytes"]


def _headline(scores: dict[str, Any]) -> dict[str, Any]:
    """What the before/after compares: the model's own numbers (the unigram baseline is the same)."""
    return {k: scores[k] for k in ("loss", "perplexity", "bits_per_byte", "tokens") if k in scores}


def _base_model(spec: str, trained: TrainedModel) -> str | None:
    """The folder ``--base_model`` names: ``auto`` reads the checkpoint's record of train's ``--init_from``
    (its run fingerprint, see gitnetic/training/fingerprint.py); None when there is none to score."""
    if spec == "none":
        return None
    if spec != "auto":
        return spec
    items = (trained.checkpoint.get(FINGERPRINT_KEY) or {}).get("items") or {}
    try:
        folder = json.loads(items.get("init_from") or "null")
    except ValueError:
        folder = None
    if not isinstance(folder, str) or not folder:
        return None
    if not Path(folder).is_dir():
        raise DataError(
            f"checkpoint {trained.path} was fine-tuned from {folder}, which is not a folder (any more); pass "
            "--base_model with the model folder it started from, or --base_model none to skip the before/after"
        )
    return folder


def _base_module(
    folder: str, tokenizer: Any, vocab: int, max_length: int, objective: str, params: EvaluateParams
) -> TransformerModule:
    """The base model of a before/after, checked to score the same tokens as the tuned one."""
    config = ModelConfig.from_pretrained(folder, "--base_model")
    # config.json's size first, so a misfit is said before a large model loads
    _check_vocab(folder, json.loads((Path(folder) / "config.json").read_text()).get("vocab_size"), vocab)
    model = load_hf_model(folder, "--base_model", causal=objective != "mlm")
    _check_vocab(folder, model.config.vocab_size, vocab)
    check_positions(model.config, max_length, f"--base_model {folder}")
    module = _module(model, tokenizer, config, params)
    if module.objective != objective:
        raise DataError(
            f"--base_model {folder} is scored as {module.objective}, the checkpoint as {objective}; pass the "
            "model the run started from, or --base_model none"
        )
    return module


def _score_windows(
    module: TransformerModule,
    windows: Windows,
    batches: list[np.ndarray],
    unigram: torch.Tensor,
    byte_lengths: torch.Tensor | None,
    generator: torch.Generator,
    prefix: str,
) -> dict[str, Any]:
    """Summed model and unigram NLL (``nll``, ``uni``) over the predicted ``tokens`` of ``windows``, and
    the UTF-8 ``bytes`` of text those tokens spell (0 without ``byte_lengths``)."""
    tokenizer = module.tokenizer
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    vocab = int(module.model.config.vocab_size)
    nll, uni, tokens, nbytes = 0.0, 0.0, 0, 0
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
            if byte_lengths is not None:
                nbytes += int(byte_lengths[gold].sum())
    return {"nll": nll, "uni": uni, "tokens": tokens, "bytes": nbytes}


def _check_vocab(folder: str, size: Any, vocab: int) -> None:
    if isinstance(size, int) and size != vocab:
        raise DataError(
            f"--base_model {folder} has a vocabulary of {size} tokens, the checkpoint's model {vocab}: a "
            "before/after needs the tokenizer both were trained with; pass the model the run started "
            "from, or --base_model none"
        )


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
