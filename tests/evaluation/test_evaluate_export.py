"""``evaluate`` (gitnetic/evaluation) and ``export`` (gitnetic/inference/export.py): on a checkpoint the seed
command trains, and on broken inputs.

The causal-LM path is one test on purpose: training is the expensive part, and a session fixture
would be trained again on every pytest-xdist worker that happens to receive one of its users.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gitnetic.cli import main as cli_main
from tests.helpers import CONFIGS, GPT2_TINY, assert_trained, train_seed_command


def model_args(checkpoint: Path, config: Path, tokenizer: Path) -> list[str]:
    return ["--checkpoint", str(checkpoint), "--config_path", str(config), "--tokenizer_path", str(tokenizer)]


def evaluate(args: list[str], out: Path, *extra: str) -> dict:
    assert cli_main.main(["evaluate", *args, "--output", str(out), *extra]) == 0
    return json.loads(out.read_text())


def test_seed_command_then_evaluate_and_export_a_causal_lm(tmp_path, tiny_tokenizer, lm_shards):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gitnetic.data.shards.indexed import IndexedDataset
    from gitnetic.models.checkpoint import load_trained_model

    run = train_seed_command(tmp_path / "clm", GPT2_TINY, tiny_tokenizer, lm_shards)
    assert_trained(run)
    args = model_args(run["save_dir"] / "checkpoint_last.ckpt", GPT2_TINY, tiny_tokenizer)

    # evaluate: held-out test split, unigram baseline counted on train
    out = tmp_path / "metrics" / "eval.json"
    test_prefix, train_prefix = str(lm_shards / "test"), str(lm_shards / "train")
    metrics = evaluate(args, out, "--data_prefix", test_prefix, "--train_prefix", train_prefix)
    assert set(metrics) >= {"loss", "perplexity", "tokens", "unigram_perplexity"}
    assert metrics["objective"] == "clm" and metrics["global_step"] == run["steps"]
    assert math.isfinite(metrics["perplexity"]) and math.isclose(
        metrics["perplexity"], math.exp(metrics["loss"])
    )
    assert 1 < metrics["perplexity"] < 0.7 * metrics["unigram_perplexity"], metrics
    # every token but the first of each document is predicted exactly once
    assert metrics["tokens"] == int(sum(max(int(n) - 1, 0) for n in IndexedDataset(test_prefix).sizes))
    assert not list(out.parent.glob(".*tmp"))  # the atomic write left no temporary behind
    # code-completion metrics (gitnetic/evaluation/completion.py): 32 held-out lines by default; the
    # tokenizer has no FIM tokens, so no infilling
    assert metrics["next_line_samples"] == 32 and 0 <= metrics["next_line_exact_match"] <= 1
    assert "infill_exact_match" not in metrics and "infill_samples" not in metrics

    # shorter windows and smaller batches score the same tokens, with a little less context
    small = evaluate(
        args, tmp_path / "small.json", "--data_prefix", test_prefix, "--train_prefix", train_prefix,
        "--max_length", "48", "--batch_size", "3", "--completion_samples", "0",
    )  # fmt: skip
    assert small["tokens"] == metrics["tokens"]
    assert not any(key.startswith(("next_line", "infill")) for key in small)  # 0 turns them off
    assert small["unigram_perplexity"] == pytest.approx(metrics["unigram_perplexity"])
    assert metrics["loss"] <= small["loss"] + 0.05 and small["loss"] - metrics["loss"] < 0.5

    # benchmark on the checkpoint itself (as the pipeline runs it, before export): 2 HumanEval problems
    bench_out = tmp_path / "bench.json"
    bench_args = ["--model", *args[1:], "--limit", "2", "--temperature", "0", "--max_new_tokens", "8",
                  "--output_dir", str(tmp_path / "bench"), "--metrics", str(bench_out), "--allow_code_execution"]  # fmt: skip
    assert cli_main.main(["benchmark", *bench_args, "--device", "cpu", "--workers", "2"]) == 0
    bench = json.loads(bench_out.read_text())
    assert bench["scored_problems"] == 2 and bench["samples"] == 2 and 0 <= bench["pass@1"] <= 1
    corpus_stats = tmp_path / "stats.json"
    corpus_stats.write_text(json.dumps({"sources": {"code": {}, "docs": {}}, "documents": {"train": 9},
                                        "licenses": {"code": "MIT", "docs": "MIT"}}))  # fmt: skip

    # export: loads with the Auto classes, has the checkpoint's weights, generates code
    hf = tmp_path / "models" / "hf"
    card_args = [
        "--eval_metrics",
        str(out),
        "--benchmark_metrics",
        str(bench_out),
        "--corpus_stats",
        str(corpus_stats),
    ]
    assert cli_main.main(["export", *args, "--output_dir", str(hf), *card_args]) == 0
    # the model card: Hugging Face metadata with the results of both stages, and the training params
    import yaml

    front, body = (hf / "README.md").read_text().split("---\n", 2)[1:]
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "transformers" and meta["license"] == "mit" and "gitnetic" in meta["tags"]
    results = {m["name"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert results["pass@1"] == pytest.approx(bench["pass@1"], abs=1e-4)
    assert results["perplexity"] == pytest.approx(metrics["perplexity"], abs=1e-3)
    assert "learning_rate" in body and "code, docs" in body
    model = AutoModelForCausalLM.from_pretrained(hf, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(hf, local_files_only=True)
    assert type(model).__name__ == "GPT2LMHeadModel"
    assert json.loads((hf / "gitnetic_export.json").read_text())["global_step"] == run["steps"]
    reference = load_trained_model(str(run["save_dir"]), str(GPT2_TINY), str(tiny_tokenizer)).model
    prompt = "def get_count(count, size=3):\n"
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, reference(ids).logits, atol=1e-5)
        generated = model.generate(ids, max_new_tokens=12, do_sample=False)
    assert generated.shape[1] > ids.shape[1]
    text = tokenizer.decode(generated[0], skip_special_tokens=True)
    assert text.startswith(prompt) and len(text) > len(prompt)

    # a second export replaces the folder atomically
    assert cli_main.main(["export", *args, "--output_dir", str(hf)]) == 0
    assert sorted(p.name for p in hf.parent.iterdir()) == ["hf"]


@pytest.mark.parametrize("problem", ["missing", "corrupt", "not-a-checkpoint", "wrong-config", "empty-dir"])
@pytest.mark.parametrize("command", ["export", "evaluate"])
def test_bad_checkpoints_are_one_line_errors(
    command, problem, fresh_checkpoint, tiny_tokenizer, lm_shards, tmp_path, capsys
):
    ckpt, config = tmp_path / "bad.ckpt", GPT2_TINY
    if problem == "corrupt":
        good = fresh_checkpoint.read_bytes()
        ckpt.write_bytes(good[: len(good) // 2])
    elif problem == "not-a-checkpoint":
        ckpt.write_text("hello")
    elif problem == "wrong-config":
        ckpt, config = fresh_checkpoint, CONFIGS / "llama-tiny.yaml"
    elif problem == "empty-dir":
        ckpt = tmp_path / "empty"
        ckpt.mkdir()
    args = model_args(ckpt, config, tiny_tokenizer)
    out = tmp_path / "out"
    if command == "export":
        args += ["--output_dir", str(out)]
    else:
        args += ["--data_prefix", str(lm_shards / "valid"), "--output", str(out)]
    assert cli_main.main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gitnetic {command}: error: ") and err.count("\n") == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data_prefix", "{tmp}/nope"], "nope"),
        (["--data_prefix", "{shards}/valid", "--max_length", "2000"], "n_positions=1024 is too small"),
        (["--data_prefix", "{shards}/valid", "--objective", "gpt"], "invalid choice"),
        (["--data_prefix", "{shards}/valid", "--completion_samples", "-1"], "--completion_samples must be"),
        (
            ["--data_prefix", "{shards}/valid", "--completion_max_context", "8"],
            "--completion_max_context must",
        ),
    ],
)
def test_evaluate_user_errors(extra, message, fresh_checkpoint, tiny_tokenizer, lm_shards, tmp_path, capsys):
    extra = [e.format(tmp=tmp_path, shards=lm_shards) for e in extra]
    argv = ["evaluate", *model_args(fresh_checkpoint, GPT2_TINY, tiny_tokenizer), *extra]
    try:
        code = cli_main.main([*argv, "--output", str(tmp_path / "e.json")])
    except SystemExit as exc:  # argparse errors exit from inside the parser
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize(
    ("flag", "value"), [("--batch_size", "0"), ("--max_tokens", "-1"), ("--num_threads", "-1")]
)
def test_evaluate_checks_its_numbers_before_loading_anything(flag, value, tiny_tokenizer, tmp_path, capsys):
    """A bad number is reported although the checkpoint does not even exist: checked before loading."""
    argv = model_args(tmp_path / "missing.ckpt", GPT2_TINY, tiny_tokenizer)
    code = cli_main.main(["evaluate", *argv, "--data_prefix", str(tmp_path / "x"), flag, value])
    err = capsys.readouterr().err
    assert code == 2 and flag in err and "missing.ckpt" not in err


def test_evaluate_a_blend_reports_each_prefix_and_the_token_weighted_whole(
    fresh_checkpoint, tiny_tokenizer, lm_shards, tmp_path
):
    """``data_prefix`` in the blend form: per_source holds what each prefix alone scores, the overall
    metrics are their token-weighted mean; a single prefix's JSON has no per_source."""
    args = ["evaluate", *model_args(fresh_checkpoint, GPT2_TINY, tiny_tokenizer), "--max_length", "64",
            "--train_prefix", f"0.5 {lm_shards / 'train'} 0.5 {lm_shards / 'valid'}"]  # fmt: skip
    alone = {}
    for split in ("valid", "test"):
        assert (
            cli_main.main(
                [*args, "--data_prefix", str(lm_shards / split), "--output", str(tmp_path / f"{split}.json")]
            )
            == 0
        )
        alone[split] = json.loads((tmp_path / f"{split}.json").read_text())
        assert "per_source" not in alone[split]
    spec = f"0.7 {lm_shards / 'valid'} 0.3 {lm_shards / 'test'}"
    assert cli_main.main([*args, "--data_prefix", spec, "--output", str(tmp_path / "blend.json")]) == 0
    blend = json.loads((tmp_path / "blend.json").read_text())
    assert blend["data_prefix"] == spec
    per = blend["per_source"]
    assert list(per) == [str(lm_shards / "valid"), str(lm_shards / "test")]
    for split, weight in (("valid", 0.7), ("test", 0.3)):
        mine = per[str(lm_shards / split)]
        assert mine["weight"] == pytest.approx(weight)
        for key in ("loss", "perplexity", "tokens", "unigram_loss", "unigram_perplexity"):
            assert mine[key] == pytest.approx(alone[split][key], rel=1e-9), (split, key)
    tokens = [p["tokens"] for p in per.values()]
    assert blend["tokens"] == sum(tokens) > 0
    mean = sum(p["loss"] * p["tokens"] for p in per.values()) / sum(tokens)
    assert blend["loss"] == pytest.approx(mean, rel=1e-9)
    assert blend["unigram_loss"] < 7  # counted on train + valid (a blend's counts are summed)


def test_evaluate_blend_with_a_missing_prefix_is_one_line(
    fresh_checkpoint, tiny_tokenizer, lm_shards, tmp_path, capsys
):
    argv = [
        "evaluate",
        *model_args(fresh_checkpoint, GPT2_TINY, tiny_tokenizer),
        "--output",
        str(tmp_path / "e.json"),
    ]
    assert cli_main.main([*argv, "--data_prefix", f"0.5 {lm_shards / 'valid'} 0.5 {tmp_path / 'nope'}"]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and err.count("\n") == 1
    assert cli_main.main([*argv, "--data_prefix", f"0.5 {lm_shards / 'valid'} {lm_shards / 'test'}"]) == 2
    assert "must be pairs 'WEIGHT PREFIX" in capsys.readouterr().err
    assert not (tmp_path / "e.json").exists()


def test_evaluate_shards_of_another_tokenizer_is_one_line(fresh_checkpoint, tiny_tokenizer, tmp_path, capsys):
    """The message train gives too (data/shards/indexed.check_token_ids), here per scored batch."""
    from tests.helpers import write_shard

    prefix = write_shard(tmp_path / "foreign", [[5, 6, 7, 8], [5, 7354, 6, 9]])
    argv = ["evaluate", *model_args(fresh_checkpoint, GPT2_TINY, tiny_tokenizer), "--data_prefix", prefix]
    assert cli_main.main([*argv, "--output", str(tmp_path / "e.json"), "--completion_samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gitnetic evaluate: error: {prefix} holds token id 7354 but the model has ")
    assert "score shards made with the training tokenizer" in err and err.count("\n") == 1
    assert not (tmp_path / "e.json").exists()


@pytest.mark.parametrize("command", ["export", "evaluate", "generate"])
def test_a_checkpoint_with_non_finite_weights_is_refused_in_one_line(
    command, fresh_checkpoint, tiny_tokenizer, lm_shards, tmp_path, capsys
):
    """Issue 29 item 2: the weights of a diverged run (NaN) were evaluated to ``"loss": NaN``, exported with
    "held-out perplexity inf" and crashed ``generate`` with a traceback."""
    ckpt = torch.load(fresh_checkpoint, map_location="cpu", weights_only=False)
    name = sorted(k for k in ckpt["state_dict"] if k.endswith("weight"))[1]
    ckpt["state_dict"][name][0] = float("nan")
    bad = tmp_path / "diverged.ckpt"
    torch.save(ckpt, bad)
    args = model_args(bad, GPT2_TINY, tiny_tokenizer)
    out = tmp_path / "out"
    if command == "export":
        args += ["--output_dir", str(out)]
    elif command == "evaluate":
        args += ["--data_prefix", str(lm_shards / "valid"), "--output", str(out)]
    else:
        args = ["--model", str(bad), *args[2:], "--prompt", "def f(", "--max_new_tokens", "2"]
    assert cli_main.main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gitnetic {command}: error: checkpoint {bad} ") and err.count("\n") == 1, err
    assert f"non-finite weights ({name.removeprefix('model.')} holds nan)" in err, err
    assert not out.exists()
