"""``init --from MODEL_DIR``: the fine-tune rule (full or LoRA, checkpointing, memory) and the params.yaml
it writes; planned from a config.json alone (a 7B Llama shape) or a tiny saved model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.models.footprint import read_footprint
from gitnetic.pipeline.finetune import GB, estimate_memory, format_finetune_plan, plan_finetune
from gitnetic.pipeline.init_project import init_project
from gitnetic.pipeline.params import InitParams
from gitnetic.pipeline.plan import Budget
from tests.helpers import CONFIGS, REPO
from tests.helpers.models import save_random_model

GPU_10_HOURS = Budget("gpu", 36000.0, 1e14)

LLAMA_7B = {  # Llama-2-7B's shape
    "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 4096,
    "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "vocab_size": 32000, "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
}  # fmt: skip
GPT2_124M = {
    "model_type": "gpt2", "architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_layer": 12,
    "n_head": 12, "n_positions": 1024, "vocab_size": 50257,
}  # fmt: skip


def config_folder(root: Path, name: str, config: dict) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def llama_7b(tmp_path_factory) -> Path:
    return config_folder(tmp_path_factory.mktemp("models"), "llama-7b", LLAMA_7B)


def test_a_7b_model_on_80_gb_is_a_lora_plan_and_its_full_fine_tune_needs_16_bytes_a_parameter(llama_7b):
    footprint = read_footprint(llama_7b)
    assert footprint.source == "config" and not footprint.has_weights
    assert footprint.params == 6_738_415_616  # Llama-2-7B, counted on the meta device
    plan = plan_finetune(footprint, GPU_10_HOURS, corpus_bytes=50_000_000)
    assert plan.method == "lora" and plan.precision == "bf16-true"
    full = plan.full_memory
    assert full.states == 16 * footprint.params  # fp32 weights 4 + grads 4 + Adam 8 bytes
    assert 105 * GB < full.states < 115 * GB  # "about 112 GB": more than an 80 GB GPU
    assert plan.lora_target_modules == ["q_proj", "k_proj", "v_proj", "o_proj"]  # what training adapts
    assert plan.lora_params == 32 * 4 * 16 * (4096 + 4096)  # 32 layers x 4 projections x r (in + out)
    memory = plan.memory
    assert memory.weights == 2 * footprint.params  # the frozen base in bf16
    assert memory.trainable_states == 16 * plan.lora_params
    assert memory.total <= 0.9 * 80 * GB
    assert plan.max_length == 2048 and plan.learning_rate == 2e-4
    assert (
        plan.batch_size * plan.accumulate_grad_batches * plan.max_length * plan.max_steps
        == plan.tokens_to_train
    )
    assert "LoRA r=16" in format_finetune_plan(plan) and "has no weights yet" in format_finetune_plan(plan)

    # a bigger device takes the full fine-tune; a too small one is refused in one line
    assert (
        plan_finetune(footprint, GPU_10_HOURS, corpus_bytes=50_000_000, device_memory_gb=200).method == "full"
    )
    with pytest.raises(ConfigError, match="does not fit 8 GB even with LoRA"):
        plan_finetune(footprint, GPU_10_HOURS, corpus_bytes=50_000_000, device_memory_gb=8)


def test_a_100m_model_is_a_full_fine_tune_without_checkpointing(tmp_path):
    footprint = read_footprint(config_folder(tmp_path, "gpt2", GPT2_124M))
    assert 120e6 < footprint.params < 130e6  # GPT-2 small, tied embeddings counted once
    plan = plan_finetune(footprint, GPU_10_HOURS, corpus_bytes=20_000_000)
    assert plan.method == "full" and plan.precision == "bf16-mixed" and not plan.gradient_checkpointing
    assert plan.memory.states == 16 * footprint.params and plan.memory.autocast_copies == 2 * footprint.params
    assert plan.max_length == 1024 and plan.learning_rate == 2e-5 and plan.lora_target_modules == []


def test_checkpointing_switches_on_when_activations_do_not_fit(llama_7b):
    footprint = read_footprint(llama_7b)
    kw = {"method": "lora", "precision": "bf16-true", "micro_batch": 1, "sequence": 4096, "lora_params": 0}
    plain = estimate_memory(footprint, checkpointing=False, **kw)
    checkpointed = estimate_memory(footprint, checkpointing=True, **kw)
    assert checkpointed.activations < plain.activations / 10 and checkpointed.weights == plain.weights
    # 24 GB: the bf16 weights (13.5 GB) fit, 4096-token activations only with checkpointing
    plan = plan_finetune(
        footprint, GPU_10_HOURS, corpus_bytes=50_000_000, device_memory_gb=24, max_length=4096
    )
    assert plain.total > 0.9 * 24 * GB  # without checkpointing not even one sequence fits
    assert plan.method == "lora" and plan.gradient_checkpointing and plan.max_length == 4096
    assert plan.memory.total <= 0.9 * 24 * GB


def test_the_budget_limits_tokens_and_steps(llama_7b):
    footprint = read_footprint(llama_7b)
    rich = plan_finetune(footprint, GPU_10_HOURS, corpus_bytes=0, corpus_tokens=10_000_000)
    assert rich.limited_by == "data" and rich.usable_tokens == int(int(10_000_000 * 0.92) * 2)
    poor = plan_finetune(footprint, Budget("gpu", 600.0, 1e14), corpus_bytes=0, corpus_tokens=10**9)
    assert poor.limited_by == "compute"
    assert poor.tokens_to_train * poor.flops_per_token <= 600.0 * 1e14 * 1.05
    assert poor.flops_per_token == pytest.approx(4 * (footprint.params + 32 * 2048 * 4096))  # LoRA: 4/param


def test_a_saved_model_is_sized_from_its_safetensors_header(tmp_path, tiny_tokenizer):
    from transformers import AutoModelForCausalLM

    folder = save_random_model(tiny_tokenizer, tmp_path / "hf", CONFIGS / "llama-tiny.yaml")
    footprint = read_footprint(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert footprint.source == "safetensors" and footprint.has_weights and footprint.has_tokenizer
    assert footprint.params == sum(p.numel() for p in model.parameters())
    with pytest.raises(DataError, match="no config.json"):
        read_footprint(tmp_path)


# ---------------------------------------------------------------------------------------------- init
@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    src = tmp_path / "src" / "pkg"
    src.mkdir(parents=True)
    for i in range(5):
        (src / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20, encoding="utf-8")
    return tmp_path


def accepted_train_section(params_file: Path, tmp_path: Path) -> tuple:
    """``train --config params.yaml:train`` parses the written section, every key of it a train flag."""
    from gitnetic.cli import train as train_cli

    section = yaml.safe_load(params_file.read_text(encoding="utf-8"))["train"]
    parser, _ = train_cli.build_parser("transformer-task")
    unknown = set(section) - {action.dest for action in parser._actions}
    assert not unknown, unknown  # every key the plan writes is a train flag (the LoRA ones included)
    _, parsed = train_cli.parse(["--config", f"{params_file}:train"])
    return section, {f: getattr(item, f) for item in parsed[:-1] for f in vars(item)}


def test_init_from_a_saved_model_writes_a_full_fine_tune_that_train_accepts(checkout, tiny_tokenizer, capsys):
    from gitnetic.cli import main as cli_main

    folder = save_random_model(tiny_tokenizer, checkout / "hf", CONFIGS / "gpt2-tiny.yaml")
    rc = cli_main.main([
        "init", "--from", str(folder), "--path", str(checkout / "src"), "--gpu_hours", "0.01",
        "--output", str(checkout / "params.yaml"), "--force",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0 and "full fine-tune" in out and "peak GPU mem" in out
    assert not (checkout / "configs").exists()  # the model folder is the config
    written = yaml.safe_load((checkout / "params.yaml").read_text(encoding="utf-8"))
    assert written["tokenizer"]["init_from"] == str(folder.resolve())
    for stage in ("evaluate", "export", "benchmark"):
        assert written[stage]["config_path"] == str(folder.resolve())
    section, values = accepted_train_section(checkout / "params.yaml", checkout)
    assert section.get("lora_r", 0) == 0  # a full fine-tune: no adapters
    assert values["init_from"] == str(folder.resolve()) and values["config_path"] is None
    assert values["precision"] == "bf16-mixed" and values["gradient_checkpointing"] is False
    assert values["gpus"] == 1 and values["max_length"] == 1024  # gpt2-tiny: 1024 positions


def test_init_from_a_7b_config_writes_a_lora_plan(checkout, llama_7b):
    result = init_project(
        InitParams(
            init_from=str(llama_7b), path=str(checkout / "src"), gpu_hours=2.0, tokens=5_000_000, max_length=1024,
            output=str(checkout / "params.yaml"), force=True,
        )
    )  # fmt: skip
    assert result.plan.method == "lora" and result.written == [str(checkout / "params.yaml")]
    assert result.plan.corpus_tokens == 5_000_000
    text = (checkout / "params.yaml").read_text(encoding="utf-8")
    assert text.startswith("# gitnetic pipeline parameters written by `python -m gitnetic init --from`")
    section, values = accepted_train_section(checkout / "params.yaml", checkout)
    assert section["lora_r"] == 16 and section["lora_alpha"] == 32 and section["lora_dropout"] == 0.05
    assert section["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert values["precision"] == "bf16-true" and values["learning_rate"] == 2e-4
    assert values["batch_size"] == result.plan.batch_size and values["max_steps"] == result.plan.max_steps
    assert values["max_length"] == 1024 and values["init_from"] == str(llama_7b.resolve())
