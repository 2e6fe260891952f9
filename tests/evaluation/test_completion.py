"""Completion metrics (next-line and infilling exact match) on a model whose answers are known.

The model is a real ``GPT2LMHeadModel`` with hand-set weights that make it a bigram table: its block
is switched off (zero output projections), positions are zero, and each listed token gets its own
one-hot embedding, so the greedy next token depends on the last token only. Told "after a newline comes
``x``" and "after ``<fim_middle>`` comes ``y``", it completes every line as ``x=1`` and infills every
line as ``y=1``; on a file of ``x=1`` and ``y=1`` lines the exact-match rates are then the shares of
each kind, counted by hand below. A miss writes ``x=1`` for ``y=1`` (or back): edit similarity
``2 * 2 / (3 + 3) = 2/3`` (``=1`` in common). Documents go through real MMIDIDX shards and a real trained tokenizer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gitnetic.common.errors import ConfigError
from gitnetic.evaluation import completion
from gitnetic.evaluation.completion import LINE_TOKENS, completion_metrics, newline_token_mask, sample_lines

# lines after the first: y x x y x -> next line ("x=1") hits 3 of 5, infilling ("y=1") 2 of 5
DOC_A = "x=1\ny=1\nx=1\nx=1\ny=1\nx=1\n"
# lines after the first: y y x -> 1 of 3 and 2 of 3; the long line has more than LINE_TOKENS tokens
DOC_B = "x=1\ny=1\ny=1\nq=" + "b+" * LINE_TOKENS + "b\nx=1\n"


def load(tokenizer_dir: Path):
    from gitnetic.data.tokenizer.load import load_tokenizer

    return load_tokenizer(tokenizer_dir)


def write_shard(tmp_path: Path, tokenizer, docs: list[str]):
    """Documents encoded as preprocess does (special-token strings stay text, ``</s>`` appended)."""
    from gitnetic.data.shards.encoder import HFEncoder
    from gitnetic.data.shards.indexed import IndexedDataset, IndexedDatasetBuilder

    encoder = HFEncoder(tokenizer)
    with IndexedDatasetBuilder(tmp_path / "test", np.uint16) as builder:
        for doc in docs:
            builder.add_document([*encoder.encode(doc).tolist(), tokenizer.eos_token_id])
        builder.finalize()
    return IndexedDataset(str(tmp_path / "test"))


def bigram_model(tokenizer, successor: dict[str, str], n_positions: int = 256):
    """A real GPT-2 whose greedy next token is ``successor[last token]`` (tokens named by their text)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    def token_id(text: str) -> int:
        vocab = tokenizer.get_vocab()
        if text in vocab:  # special tokens by name
            return vocab[text]
        (only,) = tokenizer(text, add_special_tokens=False)["input_ids"]
        return only

    pairs = [(token_id(a), token_id(b)) for a, b in successor.items()]
    dim = 16
    config = GPT2Config(
        vocab_size=len(tokenizer), n_embd=dim, n_layer=1, n_head=1, n_positions=n_positions,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        block = model.transformer.h[0]
        for norm in (block.ln_1, block.ln_2, model.transformer.ln_f):
            norm.weight.fill_(1.0)
        for slot, (src, _) in enumerate(pairs):
            model.transformer.wte.weight[src, slot] = 1.0
        hidden = model.transformer.ln_f(model.transformer.wte.weight)  # what lm_head sees per last token
        for src, dst in pairs:
            model.lm_head.weight[dst] += 5.0 * hidden[src]
    return model


SUCCESSOR = {"x": "=", "y": "=", "=": "1", "1": "\n", "\n": "x", "<fim_middle>": "y"}
MISS = 2 / 3  # edit similarity of x=1 and y=1


def test_the_stand_in_model_is_the_bigram_table(fim_tokenizer) -> None:
    tokenizer = load(fim_tokenizer)
    model = bigram_model(tokenizer, SUCCESSOR)
    ids = tokenizer("x=1\n", add_special_tokens=False, return_tensors="pt")["input_ids"]
    out = model.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.decode(out[0]) == "x=1\nx=1\nx=1\n"


def test_exact_match_on_a_known_answer(tmp_path, fim_tokenizer) -> None:
    tokenizer = load(fim_tokenizer)
    model = bigram_model(tokenizer, SUCCESSOR)
    dataset = write_shard(tmp_path, tokenizer, [DOC_A, DOC_B])

    lines = sample_lines(dataset, tokenizer, newline_token_mask(tokenizer, len(tokenizer)), 100, seed=0)
    # every line but each file's first and the over-long one, once each
    assert sorted((line.document, line.text) for line in lines) == sorted(
        [(0, "y=1"), (0, "x=1"), (0, "x=1"), (0, "y=1"), (0, "x=1"), (1, "y=1"), (1, "y=1"), (1, "x=1")]
    )

    metrics = completion_metrics(model, tokenizer, dataset, samples=100, seed=0)
    assert metrics == {
        "next_line_samples": 8,
        "next_line_exact_match": pytest.approx(4 / 8),
        "next_line_edit_similarity": pytest.approx((4 + 4 * MISS) / 8),
        "infill_samples": 8,
        "infill_exact_match": pytest.approx(4 / 8),
        "infill_edit_similarity": pytest.approx((4 + 4 * MISS) / 8),
    }
    # only the first document: 3 of 5 and 2 of 5
    first = completion_metrics(model, tokenizer, dataset, samples=100, seed=0, max_documents=1)
    assert first["next_line_exact_match"] == pytest.approx(3 / 5)
    assert first["infill_exact_match"] == pytest.approx(2 / 5)
    assert first["next_line_edit_similarity"] == pytest.approx((3 + 2 * MISS) / 5)
    assert first["infill_edit_similarity"] == pytest.approx((2 + 3 * MISS) / 5)

    # a model that never ends the line (after "1" come spaces, forever) scores nothing, though the
    # LINE_TOKENS + 1 tokens it wrote strip to the right text: a hit must end its line
    rambling = bigram_model(tokenizer, {**SUCCESSOR, "1": " ", " ": " "})
    never = completion_metrics(rambling, tokenizer, dataset, samples=100, seed=0)
    assert never["next_line_exact_match"] == 0 and never["infill_exact_match"] == 0
    assert never["next_line_edit_similarity"] == metrics["next_line_edit_similarity"]  # same text written


def test_samples_are_a_deterministic_function_of_the_seed(tmp_path, fim_tokenizer) -> None:
    tokenizer = load(fim_tokenizer)
    model = bigram_model(tokenizer, SUCCESSOR)
    dataset = write_shard(tmp_path, tokenizer, [DOC_A, DOC_B] * 4)
    newline = newline_token_mask(tokenizer, len(tokenizer))

    def picked(seed: int) -> list[tuple[int, int]]:
        return [(line.document, line.start) for line in sample_lines(dataset, tokenizer, newline, 5, seed)]

    assert picked(0) == picked(0) and len(picked(0)) == 5
    assert picked(0) != picked(1)
    for seed in (0, 1):
        lines = sample_lines(dataset, tokenizer, newline, 5, seed)
        xs = sum(line.text == "x=1" for line in lines)
        expected = {
            "next_line_samples": 5,
            "next_line_exact_match": pytest.approx(xs / 5),
            "next_line_edit_similarity": pytest.approx((xs + (5 - xs) * MISS) / 5),
            "infill_samples": 5,
            "infill_exact_match": pytest.approx((5 - xs) / 5),
            "infill_edit_similarity": pytest.approx((5 - xs + xs * MISS) / 5),
        }
        assert completion_metrics(model, tokenizer, dataset, samples=5, seed=seed) == expected


def test_off_switch_no_fim_tokens_and_bad_params(tmp_path, tiny_tokenizer) -> None:
    tokenizer = load(tiny_tokenizer)  # no FIM tokens: next-line only
    no_fim = {k: v for k, v in SUCCESSOR.items() if k != "<fim_middle>"}
    model = bigram_model(tokenizer, no_fim)
    dataset = write_shard(tmp_path, tokenizer, [DOC_A])
    assert completion_metrics(model, tokenizer, dataset, samples=0) == {}
    assert completion_metrics(model, tokenizer, dataset, samples=50) == {
        "next_line_samples": 5,
        "next_line_exact_match": pytest.approx(3 / 5),
        "next_line_edit_similarity": pytest.approx((3 + 2 * MISS) / 5),
    }
    with pytest.raises(ConfigError, match="--completion_samples"):
        completion_metrics(model, tokenizer, dataset, samples=-1)
    with pytest.raises(ConfigError, match="--completion_max_context"):
        completion_metrics(model, tokenizer, dataset, samples=4, max_context=10)
    # a model too short for any prompt is skipped (the metrics are on by default), not an error
    short = bigram_model(tokenizer, no_fim, n_positions=completion.MIN_CONTEXT - 1)
    assert completion_metrics(short, tokenizer, dataset, samples=4) == {}


def test_context_is_cut_to_the_window(tmp_path, fim_tokenizer) -> None:
    """A long file: prompts keep the code nearest the line and still fit the window (the smallest one,
    which samples lines of at most 8 tokens); a window that short leaves long lines out."""
    tokenizer = load(fim_tokenizer)
    model = bigram_model(tokenizer, SUCCESSOR, n_positions=completion.MIN_CONTEXT)
    assert completion.line_tokens(completion.MIN_CONTEXT) == completion.MIN_LINE_TOKENS
    long_line = "q=" + "b+" * 4 + "b\n"  # 11 tokens
    dataset = write_shard(tmp_path, tokenizer, [("x=1\n" + long_line) * 100])
    metrics = completion_metrics(model, tokenizer, dataset, samples=10, seed=3)
    assert metrics["next_line_samples"] == 10
    assert metrics["next_line_exact_match"] == 1.0 and metrics["infill_exact_match"] == 0.0
    assert metrics["infill_edit_similarity"] == pytest.approx(MISS)
