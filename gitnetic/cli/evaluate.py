"""``python -m gitnetic evaluate``: held-out loss/perplexity of a checkpoint, next to a unigram baseline.

Loss is token-weighted (summed NLL / predicted tokens), so it doesn't depend on how documents were
batched. The unigram perplexity on the same predicted tokens is the "learned nothing but frequencies"
bar: a model that does not beat it has not learned anything from context.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.training.checkpoint_params import TrainedModelParams

DESCRIPTION = (
    "Held-out token-weighted loss and perplexity of a checkpoint on a shard prefix, written as JSON."
)
PROG = "python -m gitnetic evaluate"

logger = logging.getLogger(__name__)


@dataclass
class EvaluateParams(TrainedModelParams):
    """Evaluation: which checkpoint, how it was built, which shards to score."""

    data_prefix: str = field(metadata={"help": "MMIDIDX shard prefix to score, e.g. data/bin/test."})
    output: str = field(
        default="metrics/eval.json", metadata={"help": "Where to write the metrics JSON (atomic)."}
    )
    train_prefix: str | None = field(
        default=None,
        metadata={
            "help": "Shard prefix for unigram counts (e.g. data/bin/train); default: the scored shard itself."
        },
    )
    max_length: int = field(
        default=0,
        metadata={
            "help": "Tokens per scored window (documents are split); 0 = what the model fits, at most 1024."
        },
    )
    batch_size: int = field(default=16, metadata={"help": "Windows per forward pass (upper bound)."})
    max_tokens: int = field(
        default=0, metadata={"help": "Padded tokens per batch (0 = only --batch_size limits)."}
    )
    objective: Literal["auto", "clm", "mlm"] = field(
        default="auto", metadata={"help": "clm or mlm; auto reads the config/model class."}
    )
    mlm_probability: float = field(
        default=0.15, metadata={"help": "Fraction of tokens masked for mlm scoring."}
    )
    seed: int = field(
        default=0, metadata={"help": "Seed of the (fixed) mlm masking, so runs are comparable."}
    )
    max_documents: int = field(default=0, metadata={"help": "Score only the first N documents (0 = all)."})
    num_threads: int = field(
        default=0,
        metadata={
            "help": "CPU threads for torch (0 = as OMP_NUM_THREADS or the machine says); fix it for "
            "bit-identical metrics whichever engine runs the stage."
        },
    )


def _objective(params: EvaluateParams, model: Any, model_config: Any) -> str:
    if params.objective != "auto":
        return params.objective
    found = model_config.inferred_objective()
    if found:
        return found
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    return "clm" if type(model).__name__ in set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values()) else "mlm"


def _window_length(requested: int, config: Any, source: str) -> int:
    """``--max_length``, checked against the model's position table (0 picks the largest that fits)."""
    from gitnetic.tasks.model_config import check_positions, position_limit

    if requested == 0:
        size, offset = position_limit(config)
        return min(1024, size - offset) if size else 1024
    if requested < 2:
        raise ConfigError(f"--max_length must be at least 2, got {requested}")
    check_positions(config, requested, source)
    return requested


def _windows(dataset: Any, max_length: int, overlap: int, max_documents: int) -> Iterator[Any]:
    """Split every document into windows of ``max_length``; CLM windows overlap by one token so each
    token after a document's first is predicted exactly once."""
    step = max_length - overlap
    n = len(dataset) if not max_documents else min(len(dataset), max_documents)
    for i in range(n):
        doc = dataset[i]
        if len(doc) <= overlap:
            continue
        for start in range(0, max(len(doc) - overlap, 1), step):
            window = doc[start : start + max_length]
            if len(window) > overlap:
                yield window


def _batches(windows: Iterator[Any], batch_size: int, max_tokens: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    longest = 0
    for w in windows:
        new_longest = max(longest, len(w))
        if batch and (
            len(batch) >= batch_size or (max_tokens and new_longest * (len(batch) + 1) > max_tokens)
        ):
            yield batch
            batch, new_longest = [], len(w)
        batch.append(w)
        longest = new_longest
    if batch:
        yield batch


def unigram_log_probs(dataset: Any, vocab_size: int) -> Any:
    """Add-one smoothed unigram log-probabilities from every token of ``dataset``."""
    import numpy as np

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


def evaluate(params: EvaluateParams) -> dict[str, Any]:
    """Score ``params.data_prefix`` with the checkpoint; returns the metrics dict."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from gitnetic.common.threads import set_torch_threads
    from gitnetic.data.indexed import IndexedDataset
    from gitnetic.training.checkpoint import load_trained_model

    if params.num_threads < 0:
        raise ConfigError(
            f"--num_threads must be 0 (as the environment says) or more, got {params.num_threads}"
        )
    set_torch_threads(params.num_threads)
    model, tokenizer, model_config, ckpt = load_trained_model(
        params.checkpoint, params.config_path, params.tokenizer_path
    )
    if params.batch_size < 1 or params.max_tokens < 0:
        raise ConfigError("--batch_size must be positive and --max_tokens 0 or more")
    objective = _objective(params, model, model_config)
    max_length = _window_length(params.max_length, model.config, model_config.source)
    dataset = IndexedDataset(params.data_prefix)
    vocab = int(model.config.vocab_size)
    unigram = torch.from_numpy(
        unigram_log_probs(IndexedDataset(params.train_prefix) if params.train_prefix else dataset, vocab)
    )
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
    mask_id = tokenizer.mask_token_id
    if objective == "mlm" and mask_id is None:
        raise ConfigError(
            "mlm scoring needs a tokenizer with a mask token; pass --objective clm for a causal model"
        )
    generator = torch.Generator().manual_seed(params.seed)

    nll_sum, uni_sum, n_tokens = 0.0, 0.0, 0
    overlap = 1 if objective == "clm" else 0
    windows = _windows(dataset, max_length, overlap, params.max_documents)
    with torch.inference_mode():
        for batch in tqdm(
            _batches(windows, params.batch_size, params.max_tokens), desc="evaluate", disable=None
        ):
            width = max(len(w) for w in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            attn = torch.zeros((len(batch), width), dtype=torch.long)
            for row, w in enumerate(batch):
                ids[row, : len(w)] = torch.from_numpy(np.asarray(w, dtype=np.int64))
                attn[row, : len(w)] = 1
            if int(ids.max()) >= vocab:
                raise DataError(
                    f"{params.data_prefix} holds token id {int(ids.max())} but the model has {vocab} tokens; "
                    "score shards made with the training tokenizer"
                )
            if objective == "clm":
                logits = model(input_ids=ids, attention_mask=attn).logits[:, :-1]
                targets = ids[:, 1:]
                keep = attn[:, 1:].bool()
            else:
                candidates = attn.bool() & ~torch.isin(ids, special)
                keep = candidates & (torch.rand(ids.shape, generator=generator) < params.mlm_probability)
                targets = ids
                inputs = ids.clone()
                roll = torch.rand(ids.shape, generator=generator)
                inputs[keep & (roll < 0.8)] = mask_id
                random_ids = torch.randint(vocab, ids.shape, generator=generator)
                swap = keep & (roll >= 0.8) & (roll < 0.9)
                inputs[swap] = random_ids[swap]
                logits = model(input_ids=inputs, attention_mask=attn).logits
            if not keep.any():
                continue
            picked = logits[keep].float()
            gold = targets[keep]
            nll_sum += float(torch.nn.functional.cross_entropy(picked, gold, reduction="sum"))
            uni_sum -= float(unigram[gold].sum())
            n_tokens += int(gold.numel())
    if n_tokens == 0:
        raise DataError(
            f"no tokens to score in {params.data_prefix} (documents too short or empty); check the preprocess stage"
        )
    loss = nll_sum / n_tokens
    unigram_loss = uni_sum / n_tokens
    return {
        "loss": loss,
        "perplexity": _safe_exp(loss),
        "tokens": n_tokens,
        "unigram_loss": unigram_loss,
        "unigram_perplexity": _safe_exp(unigram_loss),
        "objective": objective,
        "checkpoint": ckpt["_path"],
        "global_step": int(ckpt.get("global_step", 0) or 0),
        "data_prefix": params.data_prefix,
    }


def _safe_exp(x: float) -> float:
    return math.exp(x) if x < 700 else float("inf")


def main(argv: Sequence[str] | None = None) -> int:
    from gitnetic.common.io import atomic_open

    parser = DataclassArgumentParser(prog=PROG, description=DESCRIPTION)
    parser.add_arguments(EvaluateParams)
    params, _ = parser.parse_args_into_dataclasses(argv)
    metrics = evaluate(params)
    with atomic_open(params.output) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    logger.info(
        "%s: loss %.4f, perplexity %.2f (unigram %.2f) over %d tokens -> %s",
        params.data_prefix,
        metrics["loss"],
        metrics["perplexity"],
        metrics["unigram_perplexity"],
        metrics["tokens"],
        params.output,
    )
    return 0
