"""Memory levers: a pretrained base loaded in bf16 for ``bf16-true``, and gradient checkpointing."""

from __future__ import annotations

import copy

import pytest
import torch

from gitnetic.cli import main as cli_main
from gitnetic.common.errors import ConfigError
from gitnetic.models.memory import enable_gradient_checkpointing, is_gradient_checkpointing, weights_dtype
from gitnetic.modules.params import DataModuleParams, ModuleParams
from gitnetic.modules.transformer_module import TransformerModule
from gitnetic.tasks.transformer_task import TransformerTask
from gitnetic.training.params import TrainerParams
from tests.helpers import CONFIGS
from tests.helpers.models import save_random_model, tiny_gpt2


def test_only_true_16_bit_precisions_load_16_bit_weights() -> None:
    assert weights_dtype("bf16-true") == "bfloat16" and weights_dtype("16-true") == "float16"
    for precision in ("32-true", "bf16-mixed", "16-mixed", "bf16", None):  # mixed: fp32 master weights
        assert weights_dtype(precision) == "float32"


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory, tiny_tokenizer):
    return save_random_model(
        tiny_tokenizer, tmp_path_factory.mktemp("llama") / "hf", CONFIGS / "llama-tiny.yaml"
    )


def _task(folder, shards, precision: str) -> TransformerTask:
    return TransformerTask.setup(
        (
            TransformerTask.Params(init_from=str(folder)),
            ModuleParams(warmup_steps=0),
            DataModuleParams(train_data_prefix=str(shards / "train"), batch_size=2, max_length=32),
            TrainerParams(precision=precision),
        )
    )


def test_bf16_true_loads_the_base_in_bf16_and_trains_on_cpu(tmp_path, llama_folder, lm_shards):
    model = _task(llama_folder, lm_shards, "bf16-true").module.model
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.training  # Lightning keeps the mode it finds: dropout and checkpointing need train mode
    dtypes = {p.dtype for p in _task(llama_folder, lm_shards, "bf16-mixed").module.model.parameters()}
    assert dtypes == {torch.float32}  # mixed precision keeps fp32 master weights

    save_dir = tmp_path / "ckpt"
    rc = cli_main.main([
        "train", "--task", "transformer-task", "--init_from", str(llama_folder), "--precision", "bf16-true",
        "--train_data_prefix", str(lm_shards / "train"), "--batch_size", "2", "--max_length", "32",
        "--packing", "true", "--max_steps", "3", "--warmup_steps", "0", "--gpus", "0",
        "--save_dir", str(save_dir), "--save_step_frequency", "0", "--progress_bar_refresh_rate", "0",
        "--dvclive_dir", "", "--num_threads", "1", "--gradient_checkpointing", "true",
    ])  # fmt: skip
    assert rc == 0
    state = torch.load(save_dir / "checkpoint_last.ckpt", map_location="cpu", weights_only=False)
    assert state["global_step"] == 3
    weights = [v for k, v in state["state_dict"].items() if k.endswith(".weight")]
    assert weights and {w.dtype for w in weights} == {torch.bfloat16}
    assert all(torch.isfinite(w.float()).all() for w in weights)


def test_gradient_checkpointing_is_enabled_and_gives_the_same_loss_and_gradients(tiny_tokenizer):
    from gitnetic.data.tokenizer.load import load_tokenizer

    tokenizer = load_tokenizer(tiny_tokenizer)
    torch.manual_seed(0)
    model = tiny_gpt2(tokenizer)  # dropout 0.1: the recomputed forward must draw the same masks
    plain = TransformerModule(model, tokenizer, ModuleParams())
    checkpointed = TransformerModule(
        copy.deepcopy(model), tokenizer, ModuleParams(gradient_checkpointing=True)
    )
    assert is_gradient_checkpointing(checkpointed.model) and not is_gradient_checkpointing(plain.model)
    ids = torch.randint(3, len(tokenizer), (2, 24), generator=torch.Generator().manual_seed(1))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    results = []
    for module in (plain, checkpointed):
        module.train()
        torch.manual_seed(5)
        loss, _ = module.loss_sum_and_count(batch, None)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in module.model.named_parameters()}))
    (loss_a, grads_a), (loss_b, grads_b) = results
    assert torch.allclose(loss_a, loss_b, rtol=1e-6, atol=1e-6)
    assert grads_a.keys() == grads_b.keys()
    for name, grad in grads_a.items():
        assert torch.allclose(grad, grads_b[name], rtol=1e-5, atol=1e-7), name
    assert any(g.abs().sum() > 0 for g in grads_a.values())


def test_gradient_checkpointing_on_a_model_without_it_is_a_config_error():
    with pytest.raises(ConfigError, match="does not support gradient checkpointing"):
        enable_gradient_checkpointing(torch.nn.Linear(2, 2))
