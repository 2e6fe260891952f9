"""Bits per byte (gitnetic/data/token_bytes.py, evaluate's ``bits_per_byte``) against a computation
of its own, and the before/after of a fine-tune (``base`` in metrics/eval.json) against separate runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gitnetic.cli import main as cli_main
from tests.helpers import TINY_CORPUS_FILES, generated_modules, preprocess_shards, save_random_model


def evaluate(out: Path, *args: str) -> dict:
    assert (
        cli_main.main(["evaluate", *map(str, args), "--completion_samples", "0", "--output", str(out)]) == 0
    )
    return json.loads(out.read_text())


def model_args(checkpoint: Path, config: Path, tokenizer: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--config_path", str(config), "--tokenizer_path", str(tokenizer)]


def lightning_checkpoint(path: Path, state: dict, **extra) -> Path:
    torch.save({"state_dict": {f"model.{k}": v for k, v in state.items()}, "global_step": 7, **extra}, path)
    return path


def sentencepiece_style_tokenizer(texts: list[str]):
    """A Llama/CodeLlama-layout BPE: ``▁`` for spaces (prepended to the first word), ``<0xNN>`` byte
    fallback for characters it never saw, the decoder Llama's tokenizer.json has."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<unk>", "<s>", "</s>"])
    tok.train_from_iterator(texts, trainer)
    state = json.loads(tok.to_str())
    vocab = state["model"]["vocab"]
    ordered = sorted(vocab, key=vocab.get)
    fallback = [f"<0x{b:02X}>" for b in range(256)]  # in the model's vocabulary, as in Llama's
    state["model"]["vocab"] = {t: i for i, t in enumerate(ordered[:3] + fallback + ordered[3:])}
    state["decoder"] = {
        "type": "Sequence",
        "decoders": [
            {"type": "Replace", "pattern": {"String": "▁"}, "content": " "},
            {"type": "ByteFallback"},
            {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0},
        ],
    }
    return Tokenizer.from_str(json.dumps(state))


def test_token_bytes_add_up_to_the_text_for_byte_level_and_sentencepiece_vocabularies(tokenizer):
    from gitnetic.data.token_bytes import token_byte_lengths

    texts = [t.decode("utf-8") for t in TINY_CORPUS_FILES.values()] + ["naïve ✓ 日本語\n\tx = 'ß'  # é\r\n"]
    assert any(not t.isascii() for t in texts)
    lengths = token_byte_lengths(tokenizer, len(tokenizer) + 3)  # + 3: rows the embedding pads with
    assert lengths[tokenizer.eos_token_id] == lengths[tokenizer.pad_token_id] == 0 and not lengths[-3:].any()
    for text in texts:
        assert sum(int(lengths[i]) for i in tokenizer(text)["input_ids"]) == len(text.encode("utf-8"))

    sp = sentencepiece_style_tokenizer(texts[:-1])  # the last text's characters become <0xNN> tokens
    lengths = token_byte_lengths(sp, sp.get_vocab_size())
    for text in texts:
        ids = sp.encode(text).ids
        if text == texts[-1]:
            assert any(sp.id_to_token(i).startswith("<0x") for i in ids)
        # the one space more: the "▁" prepended to the first word (a causal LM does not score it)
        assert sum(int(lengths[i]) for i in ids) == len(text.encode("utf-8")) + 1
        assert sp.decode(ids) == text


MIXED_TEXTS = generated_modules(5, 6) + [t.decode("utf-8") for t in TINY_CORPUS_FILES.values()]


@pytest.fixture(scope="module")
def mixed_shards(tmp_path_factory, tiny_tokenizer) -> Path:
    """A test split of generated modules and the tiny corpus (non-ASCII text, CRLF), preprocessed."""
    corpus = tmp_path_factory.mktemp("bpb_corpus")
    (corpus / "test.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in MIXED_TEXTS))
    return preprocess_shards(tiny_tokenizer, corpus, tmp_path_factory.mktemp("bpb_bin"), "--splits", "test")


def test_bits_per_byte_equals_the_loss_of_the_models_own_logits_over_the_bytes_of_the_text(
    mixed_shards, tiny_tokenizer, fresh_checkpoint, tmp_path
):
    """Summed cross-entropy of logits computed here, document by document, over ln 2 x the UTF-8 bytes of
    the text after each document's first token (the tokens a causal LM predicts; ``</s>`` is text-free)."""
    from gitnetic.data.tokenizer.load import load_tokenizer
    from gitnetic.models.checkpoint import load_trained_model
    from tests.helpers import GPT2_TINY

    tok = load_tokenizer(tiny_tokenizer)
    model = load_trained_model(fresh_checkpoint, str(GPT2_TINY), str(tiny_tokenizer)).model
    texts = MIXED_TEXTS
    assert any(not t.isascii() for t in texts) and any("\r\n" in t for t in texts)
    nll, nbytes, tokens = 0.0, 0, 0
    with torch.no_grad():
        for text in texts:
            ids = tok(text)["input_ids"] + [tok.eos_token_id]
            assert len(ids) <= 1024, "a document longer than one window: the sum below would not apply"
            logits = model(torch.tensor([ids])).logits[0, :-1].double()
            nll += float(torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum"))
            first = tok.decode(ids[:1])
            assert "\ufffd" not in first and text.startswith(first)
            nbytes += len(text.encode("utf-8")) - len(first.encode("utf-8"))
            tokens += len(ids) - 1
    args = [*model_args(fresh_checkpoint, GPT2_TINY, tiny_tokenizer), "--data_prefix", mixed_shards / "test"]
    metrics = evaluate(tmp_path / "eval.json", *args)
    assert metrics["tokens"] == tokens and metrics["bytes"] == nbytes
    assert metrics["bits_per_byte"] == pytest.approx(nll / (math.log(2) * nbytes), rel=1e-6)
    assert metrics["bits_per_byte"] == pytest.approx(
        metrics["loss"] * tokens / nbytes / math.log(2), rel=1e-12
    )
    assert metrics["unigram_bits_per_byte"] == pytest.approx(
        metrics["unigram_loss"] * tokens / nbytes / math.log(2), rel=1e-12
    )
    # shorter windows score the same tokens, so the same bytes; the first 3 documents only, their bytes
    small = evaluate(tmp_path / "small.json", *args, "--max_length", "48", "--max_documents", "3")
    expected = sum(len(t.encode()) - len(tok.decode(tok(t)["input_ids"][:1]).encode()) for t in texts[:3])
    assert small["bytes"] == expected


def test_before_after_of_a_fine_tune_matches_separate_runs_of_each_model(lm_shards, tiny_tokenizer, tmp_path):
    """The base (the checkpoint's recorded --init_from folder) and the tuned model, scored in one run, give
    the numbers a run of each alone gives; the summary prints them as base -> tuned."""
    from transformers import AutoModelForCausalLM

    from gitnetic.pipeline.params import SummaryParams
    from gitnetic.pipeline.summary import pipeline_summary
    from gitnetic.tasks.params import TransformerTaskParams
    from gitnetic.training.fingerprint import run_fingerprint
    from gitnetic.training.resume import FINGERPRINT_KEY

    base = save_random_model(tiny_tokenizer, tmp_path / "base")
    weights = AutoModelForCausalLM.from_pretrained(base, local_files_only=True).state_dict()
    torch.manual_seed(3)
    tuned = {k: v + 0.05 * torch.randn_like(v) if v.is_floating_point() else v for k, v in weights.items()}
    # what train writes into its checkpoints: the run's fingerprint, --init_from among its params
    record = run_fingerprint([TransformerTaskParams(init_from=str(base), tokenizer_path=str(tiny_tokenizer))])
    ckpt = lightning_checkpoint(tmp_path / "tuned.ckpt", tuned, **{FINGERPRINT_KEY: record})
    data = ["--data_prefix", lm_shards / "test", "--max_length", "64"]

    both = evaluate(tmp_path / "metrics" / "eval.json", *model_args(ckpt, base, tiny_tokenizer), *data)
    alone = evaluate(
        tmp_path / "tuned.json", *model_args(ckpt, base, tiny_tokenizer), *data, "--base_model", "none"
    )
    base_ckpt = lightning_checkpoint(tmp_path / "base.ckpt", weights)
    before = evaluate(tmp_path / "base.json", *model_args(base_ckpt, base, tiny_tokenizer), *data)
    assert "base" not in alone and "base" not in before  # none; no init_from on record
    assert {k: v for k, v in both.items() if k != "base"} == alone
    assert both["base"] == {
        "model": str(base),
        **{k: before[k] for k in ("loss", "perplexity", "bits_per_byte", "tokens")},
    }
    assert both["base"]["loss"] != both["loss"]
    named = evaluate(
        tmp_path / "named.json", *model_args(ckpt, base, tiny_tokenizer), *data, "--base_model", base
    )
    assert named == {**both, "base": {**both["base"], "model": str(base)}}

    params = tmp_path / "params.yaml"
    params.write_text("evaluate:\n  output: metrics/eval.json\n")
    lines = "\n".join(pipeline_summary(SummaryParams(params_file=str(params))))
    assert f"{both['base']['perplexity']:,.1f} → {both['perplexity']:,.1f}" in lines, lines
    assert f"{both['base']['bits_per_byte']:.3f} → {both['bits_per_byte']:.3f}" in lines, lines


def test_a_base_model_that_is_gone_or_does_not_fit_is_one_line(
    lm_shards, tiny_tokenizer, task_tokenizer_dir, tmp_path, capsys
):
    from gitnetic.tasks.params import TransformerTaskParams
    from gitnetic.training.fingerprint import run_fingerprint
    from gitnetic.training.resume import FINGERPRINT_KEY

    base = save_random_model(tiny_tokenizer, tmp_path / "base")
    other = save_random_model(task_tokenizer_dir, tmp_path / "other")  # another vocabulary
    from transformers import AutoModelForCausalLM

    weights = AutoModelForCausalLM.from_pretrained(base, local_files_only=True).state_dict()
    record = run_fingerprint([TransformerTaskParams(init_from=str(tmp_path / "moved"))])
    ckpt = lightning_checkpoint(tmp_path / "tuned.ckpt", weights, **{FINGERPRINT_KEY: record})
    argv = ["evaluate", *model_args(ckpt, base, tiny_tokenizer), "--data_prefix", str(lm_shards / "valid")]
    out = tmp_path / "e.json"
    capsys.readouterr()  # the models' saving progress
    for extra, message in (
        ([], f"was fine-tuned from {tmp_path / 'moved'}, which is not a folder"),
        (["--base_model", str(other)], "has a vocabulary of 320 tokens, the checkpoint's model 512"),
    ):
        assert cli_main.main([*argv, *extra, "--output", str(out), "--completion_samples", "0"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("gitnetic evaluate: error: ") and message in err and err.count("\n") == 1, err
        assert not out.exists()


def test_a_masked_lm_gets_no_bits_per_byte(lm_shards, tiny_tokenizer, tmp_path):
    config = tmp_path / "roberta.yaml"
    config.write_text(
        "model_type: roberta\nobjective: mlm\nhidden_size: 32\nnum_hidden_layers: 1\nnum_attention_heads: 2\n"
        "intermediate_size: 64\nmax_position_embeddings: 130\n"
    )
    from gitnetic.models.build import build_model_and_tokenizer

    model = build_model_and_tokenizer(str(config), str(tiny_tokenizer)).model
    ckpt = lightning_checkpoint(tmp_path / "m.ckpt", model.state_dict())
    metrics = evaluate(tmp_path / "e.json", *model_args(ckpt, config, tiny_tokenizer), "--data_prefix",
                       lm_shards / "valid", "--max_length", "64")  # fmt: skip
    assert metrics["objective"] == "mlm" and metrics["perplexity"] > 1
    assert not {"bits_per_byte", "bytes", "unigram_bits_per_byte"} & set(metrics)
