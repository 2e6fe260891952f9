"""LoRA (gitnetic/models/lora.py): a tiny GPT-2 saved with save_pretrained is adapted by the real training
path; only the adapters train and are checkpointed, a run killed with SIGKILL resumes bit-exact, and evaluate, export
and generate rebuild base + adapters from the checkpoint alone."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import lightning as L
import pytest
import torch

from gitnetic.cli import main as cli_main
from gitnetic.common.errors import ConfigError, DataError, TaskError
from gitnetic.models.lora import LORA_KEY, apply_lora, default_target_modules
from gitnetic.models.params import LoraParams
from gitnetic.modules.transformer_datamodule import TransformerDataModule
from gitnetic.modules.transformer_module import TransformerModule
from gitnetic.tasks.transformer_task import TransformerTask
from gitnetic.training.fingerprint import run_fingerprint
from gitnetic.training.throughput import describe_model
from gitnetic.training.trainer import TransformerTrainer
from tests.helpers import (
    GPT2_TINY,
    assert_same_weights,
    run_gitnetic,
    save_random_model,
    start_gitnetic,
    wait_until,
)

STEPS, EVERY = 16, 6
LORA = LoraParams(lora_r=8, lora_alpha=32, lora_dropout=0.1)  # dropout on: the per-step RNG must resume too


class Losses(L.Callback):
    def __init__(self) -> None:
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.values.append(float(outputs["loss"]))


@pytest.fixture(scope="module")
def base(tmp_path_factory, tiny_tokenizer) -> Path:
    return save_random_model(tiny_tokenizer, tmp_path_factory.mktemp("lora") / "base")


def train(
    base: Path,
    shards: Path,
    save_dir: Path,
    callbacks=(),
    lora=LORA,
    resume: str | None = None,
    checkpointing=False,
):
    torch.set_num_threads(1)
    params = TransformerTrainer.Params(
        max_steps=STEPS, save_step_frequency=EVERY, save_dir=str(save_dir), resume_from_checkpoint=resume,
        val_check_interval=STEPS, progress_bar_refresh_rate=0, dvclive_dir="", seed=3,
    )  # fmt: skip
    trainer = TransformerTrainer(
        params, enable_model_summary=False, limit_val_batches=2, callbacks=list(callbacks)
    )
    task = TransformerTask.build(
        TransformerTask.Params(init_from=str(base)),
        TransformerModule.Params(learning_rate=1e-2, warmup_steps=2, gradient_checkpointing=checkpointing),
        TransformerDataModule.Params(
            train_data_prefix=str(shards / "train"), val_data_prefix=str(shards / "valid"),
            batch_size=4, max_length=32, packing=True, seed=3,
        ),
        lora,
    )  # fmt: skip
    return trainer.fit(task), task


@pytest.fixture(scope="module")
def run(base, lm_shards, tmp_path_factory):
    save_dir = tmp_path_factory.mktemp("lora_run") / "ckpt"
    losses = Losses()
    trainer, task = train(base, lm_shards, save_dir, callbacks=[losses])
    return {"trainer": trainer, "task": task, "save_dir": save_dir, "losses": losses.values}


def base_weights(model) -> dict[str, torch.Tensor]:
    """The frozen weights of a peft model under the base model's own names."""
    state = model.get_base_model().state_dict()
    return {k.replace(".base_layer", ""): v for k, v in state.items() if "lora_" not in k}


def test_only_the_adapters_train_and_the_loss_falls(run, base):
    from transformers import AutoModelForCausalLM

    losses, model = run["losses"], run["task"].module.model
    assert len(losses) == STEPS
    assert sum(losses[-4:]) / 4 < sum(losses[:4]) / 4 - 0.05, losses
    # the same validation batches score better than with the base model alone
    task = run["task"]
    untrained = TransformerModule(AutoModelForCausalLM.from_pretrained(base), task.tokenizer)
    validate = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False,
                         limit_val_batches=2, enable_model_summary=False)  # fmt: skip
    (before,) = validate.validate(untrained, datamodule=task.datamodule, verbose=False)
    assert float(run["trainer"].callback_metrics["val/loss"]) < before["val/loss"] - 0.05
    original = AutoModelForCausalLM.from_pretrained(base).state_dict()
    trained = base_weights(model)
    assert trained.keys() == original.keys()
    assert all(torch.equal(trained[k], original[k]) for k in original)
    assert all(not p.requires_grad for n, p in model.named_parameters() if "lora_" not in n)
    lora_b = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora_b and all(p.abs().sum() > 0 for p in lora_b)  # B starts at zero: it moved
    line = describe_model(run["task"].module)
    assert line.startswith("GPT2LMHeadModel with LoRA adapters, ") and line.endswith("%)")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == run["task"].module.lora["trainable_parameters"] > 0


def test_gradient_checkpointing_reaches_the_base_model_under_the_adapters(run, base, lm_shards, tmp_path):
    """The memory lever works through peft's wrapper: the wrapped model recomputes its activations, and
    the adapters end as without it (same ops recomputed, dropout's RNG state kept)."""
    _, task = train(base, lm_shards, tmp_path / "ckpt", checkpointing=True)
    model = task.module.model
    assert model.base_model.model.is_gradient_checkpointing
    adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
    reference = dict(run["task"].module.model.named_parameters())
    assert adapters and all(torch.allclose(p, reference[n], atol=1e-6) for n, p in adapters.items())


def test_checkpoints_hold_the_adapters_and_where_the_base_is(run, base, tmp_path):
    from gitnetic.models.lora import base_digest

    path = run["save_dir"] / "checkpoint_last.ckpt"
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    state = ckpt["state_dict"]
    assert state and all(".lora_A." in k or ".lora_B." in k for k in state)
    record = ckpt["hyper_parameters"][LORA_KEY]
    assert record["base"] == str(base) and record["base_digest"] == base_digest(base)
    assert record["settings"]["r"] == 8 and record["settings"]["target_modules"] == ["c_attn", "c_proj"]
    assert len(ckpt["optimizer_states"][0]["state"]) == len(state)  # moments of the adapters only
    full = tmp_path / "full.pt"
    torch.save(run["task"].module.state_dict(), full)
    assert path.stat().st_size * 4 < full.stat().st_size


def test_a_lora_run_killed_with_sigkill_resumes_to_the_same_adapters(run, base, lm_shards, tmp_path):
    """The real command, killed -9 once its first checkpoint is on disk; the same command again (auto
    resume) ends on the adapters of the uninterrupted run above (same params, in this process)."""
    save_dir = tmp_path / "ckpt"
    args = [
        "train", "--task", "transformer-task", "--init_from", base,
        "--train_data_prefix", lm_shards / "train", "--val_data_prefix", lm_shards / "valid",
        "--batch_size", "4", "--max_length", "32", "--packing", "true", "--seed", "3",
        "--learning_rate", "1e-2", "--warmup_steps", "2", "--max_steps", STEPS, "--val_check_interval", STEPS,
        "--limit_val_batches", "2", "--save_step_frequency", EVERY, "--save_dir", save_dir,
        "--progress_bar_refresh_rate", "0", "--dvclive_dir", "", "--num_threads", "1",
        "--resume_from_checkpoint", "auto", "--lora_r", LORA.lora_r, "--lora_alpha", LORA.lora_alpha,
        "--lora_dropout", LORA.lora_dropout,
    ]  # fmt: skip
    proc = start_gitnetic(*args, cwd=tmp_path)
    wait_until(save_dir / f"checkpoint_step{EVERY}.ckpt", proc, "the first checkpoint")
    proc.kill()
    proc.communicate(timeout=60)
    assert proc.returncode == -9
    assert not (save_dir / f"checkpoint_step{STEPS}.ckpt").exists()  # killed before the end
    resumed = run_gitnetic(*args, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming this run from" in resumed.stderr
    assert "GPT2LMHeadModel with LoRA adapters" in resumed.stderr and "train (" in resumed.stderr
    assert_same_weights(save_dir / "checkpoint_last.ckpt", run["save_dir"] / "checkpoint_last.ckpt")


def test_a_full_fine_tune_does_not_resume_from_a_lora_checkpoint(run, base, lm_shards, tmp_path):
    save_dir = tmp_path / "ckpt"
    shutil.copytree(run["save_dir"], save_dir)
    with pytest.raises(
        ConfigError, match="is a LoRA run's, and this is a full fine-tune; resume with the same"
    ):
        train(base, lm_shards, save_dir, lora=LoraParams(), resume="last")


def logits(model, ids: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_merged_and_adapter_exports_give_base_plus_adapter_logits(run, base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from gitnetic.models.checkpoint import load_trained_model

    ckpt = str(run["save_dir"])
    unmerged = load_trained_model(ckpt, str(base), str(base), merge=False).model
    ids = torch.randint(5, 200, (2, 24), generator=torch.Generator().manual_seed(0))
    expected = logits(unmerged, ids)
    assert not torch.allclose(expected, logits(AutoModelForCausalLM.from_pretrained(base), ids), atol=1e-4)

    args = ["--checkpoint", ckpt, "--config_path", str(base), "--tokenizer_path", str(base)]
    assert cli_main.main(["export", *args, "--output_dir", str(tmp_path / "hf")]) == 0
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "hf")
    assert not any("lora" in k for k in merged.state_dict())
    assert torch.allclose(logits(merged, ids), expected, atol=1e-5, rtol=0)
    info = json.loads((tmp_path / "hf" / "gitnetic_export.json").read_text())
    assert info["lora"]["base"] == str(base) and info["adapter_only"] is False
    assert info["model_class"] == "GPT2LMHeadModel"

    out = tmp_path / "adapter"
    assert cli_main.main(["export", *args, "--output_dir", str(out), "--adapter_only", "true"]) == 0
    assert (out / "adapter_config.json").is_file() and not (out / "model.safetensors").exists()
    adapted = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out).eval()
    assert torch.allclose(logits(adapted, ids), expected, atol=1e-6, rtol=0)


def test_evaluate_and_generate_read_a_lora_checkpoint(run, base, lm_shards, tmp_path, capsys):
    ckpt = str(run["save_dir"])
    out = tmp_path / "eval.json"
    assert cli_main.main([
        "evaluate", "--checkpoint", ckpt, "--config_path", str(base), "--tokenizer_path", str(base),
        "--data_prefix", str(lm_shards / "valid"), "--max_length", "32", "--completion_samples", "0",
        "--output", str(out),
    ]) == 0  # fmt: skip
    metrics = json.loads(out.read_text())
    assert metrics["global_step"] == STEPS and 0 < metrics["loss"] < 20

    from gitnetic.inference.generate import generate
    from gitnetic.inference.params import DecodingParams, GenerateParams

    # a model-config YAML as --config_path (the pipeline's params.yaml has one): the recorded base is used
    params = GenerateParams(
        model=ckpt, prompt=["def f("], config_path=str(GPT2_TINY), tokenizer_path=str(base), device="cpu"
    )
    (generation,) = generate(params, DecodingParams(max_new_tokens=8, greedy=True), out=io.StringIO())
    assert generation.new_tokens == 8 and generation.text

    # a base folder whose weights changed since training is refused, in one line
    changed = tmp_path / "changed"
    shutil.copytree(base, changed)
    config = json.loads((changed / "config.json").read_text())
    (changed / "config.json").write_text(json.dumps({**config, "layer_norm_epsilon": 1e-3}))
    rc = cli_main.main(["export", "--checkpoint", ckpt, "--config_path", str(changed), "--tokenizer_path",
                        str(base), "--output_dir", str(tmp_path / "never")])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "trained on other weights" in err and "Traceback" not in err
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize(
    ("family", "config"),
    [
        ("llama", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}),
        ("qwen2", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}),
        ("starcoder2", {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 4, "num_key_value_heads": 2}),
        ("gpt_bigcode", {"n_embd": 32, "n_layer": 1, "n_head": 4, "n_inner": 64}),
    ],
)  # fmt: skip
def test_each_family_gets_adapters_on_its_attention_and_merges_exactly(family, config, tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.for_model(family, vocab_size=300, **config))
    model.save_pretrained(tmp_path)
    adapted, record = apply_lora(model, LoraParams(lora_r=2), str(tmp_path))
    targets = set(default_target_modules(family))
    adapted_layers = {
        n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in adapted.named_parameters() if "lora_A" in n
    }
    assert adapted_layers == targets and record["trainable_parameters"] < record["total_parameters"] / 10
    for name, p in adapted.named_parameters():
        if "lora_B" in name:
            p.data.normal_(0, 0.5)  # a trained adapter's worth of change
    ids = torch.randint(0, 300, (1, 12), generator=torch.Generator().manual_seed(1))
    adapted.eval()
    expected = logits(adapted, ids)
    assert torch.allclose(logits(adapted.merge_and_unload(), ids), expected, atol=1e-5, rtol=0)


def test_all_linear_adapts_every_linear_layer_but_the_head_and_mfu_counts_frozen_weights_at_4(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from gitnetic.training.throughput import flops_per_token, matmul_params

    config = LlamaConfig(vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    model = LlamaForCausalLM(config)
    model.save_pretrained(tmp_path)
    full, base_n = flops_per_token(model, 16), matmul_params(model)
    adapted, _ = apply_lora(model, LoraParams(lora_r=2, lora_target_modules=["all-linear"]), str(tmp_path))
    names = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in adapted.named_parameters() if "lora_A" in n}
    assert names == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert matmul_params(adapted, frozen=True) == base_n < matmul_params(adapted)  # the whole base is frozen
    adapters = matmul_params(adapted) - base_n
    assert flops_per_token(adapted, 16) == full + 6 * adapters - 2 * base_n  # frozen: 4 FLOPs a token, not 6


def test_bad_lora_settings_are_one_line_errors(base, lm_shards):
    with pytest.raises(ConfigError, match="--lora_r must be 0"):
        LoraParams(lora_r=-1)
    with pytest.raises(ConfigError, match="--lora_dropout"):
        LoraParams(lora_r=2, lora_dropout=1.0)
    with pytest.raises(ConfigError, match="no default LoRA target modules for 'mamba'"):
        default_target_modules("mamba")
    data = TransformerDataModule.Params(train_data_prefix=str(lm_shards / "train"), batch_size=2)
    with pytest.raises(TaskError, match="--lora_r adapts a pretrained model: pass --init_from"):
        TransformerTask.build(
            TransformerTask.Params(config_path="gpt2-tiny", tokenizer_path=str(base)),
            TransformerModule.Params(), data, LoraParams(lora_r=2),
        )  # fmt: skip
    with pytest.raises(ConfigError, match="fix --lora_target_modules"):
        TransformerTask.build(
            TransformerTask.Params(init_from=str(base)), TransformerModule.Params(), data,
            LoraParams(lora_r=2, lora_target_modules=["q_proj"]),
        )  # fmt: skip
    with pytest.raises(DataError, match="is not a folder"):
        TransformerTask.build(
            TransformerTask.Params(init_from=str(base / "missing")), TransformerModule.Params(), data, LORA
        )


def test_adapter_only_export_of_a_full_fine_tune_is_one_line(
    fresh_checkpoint, tiny_tokenizer, tmp_path, capsys
):
    rc = cli_main.main([
        "export", "--checkpoint", str(fresh_checkpoint), "--config_path", "gpt2-tiny", "--tokenizer_path",
        str(tiny_tokenizer), "--output_dir", str(tmp_path / "out"), "--adapter_only", "true",
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and "is a full fine-tune's, not a LoRA run's" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_lora_settings_enter_the_run_fingerprint_only_when_lora_is_on():
    off = run_fingerprint([LoraParams(), LoraParams(lora_alpha=99)])["items"]
    assert not [k for k in off if k.startswith("lora_")]
    on = run_fingerprint([LoraParams(lora_r=8)])["items"]
    assert {"lora_r", "lora_alpha", "lora_dropout", "lora_target_modules"} <= set(on)


def test_train_help_lists_the_lora_flags(capsys):
    from gitnetic.cli.train import build_parser

    parser, _ = build_parser("transformer-task")
    text = parser.format_help()
    for flag in ("--lora_r", "--lora_alpha", "--lora_dropout", "--lora_target_modules"):
        assert flag in text
    assert "0 = off (full fine-tune)" in " ".join(text.split())
