"""Tiny models and their checkpoints (torch/transformers: imported only by the tests that use them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.helpers.paths import GPT2_TINY

# A model-config YAML (as a dict) for pipeline runs in seconds: GPT-2, 1 layer x 32, 64 positions.
TINY_MODEL_CONFIG = {
    "model": {
        "name": "transformers.GPT2LMHeadModel",
        "config": "transformers.GPT2Config",
        "config_params": {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_inner": 64, "n_positions": 64},
    }
}


def tiny_gpt2(vocab: int | Any, **overrides: Any) -> Any:
    """A randomly initialised GPT-2, 2 layers x 32 wide, 64 positions. ``vocab`` is a size, or a
    tokenizer whose size and bos/eos ids the config takes."""
    import transformers

    config: dict[str, Any] = {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64}
    if isinstance(vocab, int):
        config["vocab_size"] = vocab
    else:
        config.update(vocab_size=len(vocab), bos_token_id=vocab.bos_token_id, eos_token_id=vocab.eos_token_id)
    config.update(overrides)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**config))


def save_random_model(tokenizer_dir: Path, out: Path, config: Path = GPT2_TINY) -> Path:
    """A real (untrained) model for ``tokenizer_dir`` saved with save_pretrained, tokenizer included."""
    import torch

    from gitnetic.models.build import build_model, load_model_tokenizer
    from gitnetic.models.config import ModelConfig

    torch.manual_seed(0)
    tokenizer = load_model_tokenizer(ModelConfig.from_yaml(config), tokenizer_dir)
    build_model(ModelConfig.from_yaml(config), tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tiny_roberta(tokenizer: Any, **overrides: Any) -> Any:
    """A randomly initialised RoBERTa masked LM for ``tokenizer``, 2 layers x 32 wide, 64 positions."""
    import transformers

    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64 + 2,  # RoBERTa's positions start after the padding id
        "pad_token_id": tokenizer.pad_token_id,
        **overrides,
    }
    return transformers.RobertaForMaskedLM(transformers.RobertaConfig(**config))


def module_and_data(
    tokenizer: Any,
    model: Any,
    train: str,
    valid: str | None = None,
    *,
    module: dict | None = None,
    **data: Any,
) -> tuple[Any, Any]:
    """A ``TransformerModule`` training ``model`` (its params from ``module``) and a
    ``TransformerDataModule`` over the shard prefixes ``train``/``valid`` (its other params from ``data``).

    Build ``model`` after the ``TransformerTrainer``: the trainer seeds the RNGs that initialise it.
    """
    from gitnetic.modules.transformer_datamodule import TransformerDataModule
    from gitnetic.modules.transformer_module import TransformerModule

    module_params = TransformerModule.Params(**(module or {}))
    data_params = TransformerDataModule.Params(train_data_prefix=train, val_data_prefix=valid, **data)
    return (
        TransformerModule(model=model, tokenizer=tokenizer, params=module_params),
        TransformerDataModule(tokenizer=tokenizer, params=data_params),
    )


def checkpoint_weights(path: Path) -> dict[str, Any]:
    """The ``state_dict`` of a Lightning checkpoint file."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(a: Path | dict, b: Path | dict) -> None:
    """Two checkpoints (paths) or state dicts hold bit-identical tensors under the same names."""
    import torch

    wa = a if isinstance(a, dict) else checkpoint_weights(a)
    wb = b if isinstance(b, dict) else checkpoint_weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different[:5]}"
