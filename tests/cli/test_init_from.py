"""``init_from``: continue pretraining a local HF model folder (tiny GPT-2/Llama saved here, and an export)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning as L
import pytest
import torch

from gitnetic.cli import main as cli_main
from gitnetic.common.errors import DataError
from gitnetic.modules.transformer_datamodule import TransformerDataModule
from gitnetic.modules.transformer_module import TransformerModule
from gitnetic.tasks.transformer_task import TransformerTask
from tests.helpers import CONFIGS, run_gitnetic


def val_loss(module: TransformerModule, shards: Path, tokenizer) -> float:
    params = TransformerDataModule.Params(
        train_data_prefix=str(shards / "train"), val_data_prefix=str(shards / "valid"),
        batch_size=4, max_length=64, packing=True,
    )  # fmt: skip
    datamodule = TransformerDataModule(tokenizer=tokenizer, params=params)
    trainer = L.Trainer(
        accelerator="cpu", logger=False, enable_progress_bar=False, enable_checkpointing=False
    )
    (result,) = trainer.validate(module, datamodule=datamodule, verbose=False)
    return float(result["val/loss"])


def init_from_task(folder: Path, shards: Path, **task: str) -> TransformerTask:
    params = (
        TransformerTask.Params(init_from=str(folder), **task),
        TransformerModule.Params(warmup_steps=0),
        TransformerDataModule.Params(train_data_prefix=str(shards / "train"), batch_size=4, max_length=64),
    )
    return TransformerTask.setup(params)


@pytest.mark.parametrize("config", ["gpt2-tiny.yaml", "llama-tiny.yaml"])
def test_init_from_a_saved_model_starts_from_its_weights_and_tokenizer(
    tmp_path, tiny_tokenizer, lm_shards, config
):
    from gitnetic.data.tokenizer.load import load_tokenizer
    from gitnetic.models.build import build_model
    from gitnetic.models.config import ModelConfig

    torch.manual_seed(1)
    tokenizer = load_tokenizer(tiny_tokenizer)
    original = build_model(ModelConfig.from_yaml(CONFIGS / config), tokenizer)
    folder = tmp_path / "pretrained"
    original.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    task = init_from_task(folder, lm_shards)  # no config YAML, no tokenizer path
    model = task.module.model
    assert type(model) is type(original) and task.module.objective == "clm"
    assert len(task.tokenizer) == len(tokenizer) and task.tokenizer.eos_token_id == tokenizer.eos_token_id
    for (name, a), (_, b) in zip(original.state_dict().items(), model.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    expected = val_loss(TransformerModule(original, tokenizer), lm_shards, tokenizer)
    assert val_loss(task.module, lm_shards, task.tokenizer) == pytest.approx(expected, abs=1e-6)


def test_incomplete_or_missing_folders_are_one_line_errors(tmp_path, tiny_tokenizer, lm_shards, capsys):
    with pytest.raises(DataError, match="is not a folder"):
        init_from_task(tmp_path / "missing", lm_shards)
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text(
        json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    )
    with pytest.raises(DataError, match="missing weights"):
        init_from_task(half, lm_shards)
    rc = cli_main.main(["tokenizer", "--init_from", str(half), "--out_dir", str(tmp_path / "tok")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing weights" in err and "Traceback" not in err


def test_train_export_init_from_round_trip(tmp_path, tiny_tokenizer, lm_shards):
    """The continued run starts exactly where the first ended: its model at step 0 scores like the export."""
    gpt2 = CONFIGS / "gpt2-tiny.yaml"
    common = [
        "--task", "transformer-task", "--train_data_prefix", lm_shards / "train", "--batch_size", "4", "--max_length", "64", "--packing", "true",
        "--max_steps", "12", "--warmup_steps", "2", "--learning_rate", "3e-3", "--gpus", "0",
        "--save_step_frequency", "12", "--progress_bar_refresh_rate", "0",
    ]  # fmt: skip
    first = run_gitnetic("train", "--config_path", gpt2, "--tokenizer_path", tiny_tokenizer,
                         "--save_dir", tmp_path / "first", *common, cwd=tmp_path)  # fmt: skip
    assert first.returncode == 0, first.stderr[-3000:]
    hf = tmp_path / "hf"
    args = [
        "--checkpoint",
        str(tmp_path / "first"),
        "--config_path",
        str(gpt2),
        "--tokenizer_path",
        str(tiny_tokenizer),
    ]
    assert cli_main.main(["export", *args, "--output_dir", str(hf)]) == 0

    # tokenizer stage switch: copy the export's tokenizer instead of training one
    tok = tmp_path / "data" / "tokenizer"
    assert cli_main.main(["tokenizer", "--init_from", str(hf), "--out_dir", str(tok)]) == 0
    assert json.loads((tok / "tokenizer.json").read_text()) == json.loads((hf / "tokenizer.json").read_text())

    from gitnetic.models.checkpoint import load_trained_model

    first = load_trained_model(str(tmp_path / "first"), str(gpt2), str(tiny_tokenizer))
    trained, tokenizer = first.model, first.tokenizer
    task = init_from_task(hf, lm_shards, tokenizer_path=str(tok))
    exported = val_loss(TransformerModule(trained, tokenizer), lm_shards, tokenizer)
    assert val_loss(task.module, lm_shards, task.tokenizer) == pytest.approx(exported, abs=1e-6)

    # the continued run trains from there, and evaluate reads its checkpoint with the folder as config
    second = run_gitnetic("train", "--init_from", hf, "--tokenizer_path", tok, "--save_dir", tmp_path / "second",
                          *common, cwd=tmp_path)  # fmt: skip
    assert second.returncode == 0, second.stderr[-3000:]
    out = tmp_path / "eval.json"
    assert cli_main.main([
        "evaluate", "--checkpoint", str(tmp_path / "second"), "--config_path", str(hf), "--tokenizer_path", str(tok),
        "--data_prefix", str(lm_shards / "valid"), "--max_length", "64", "--output", str(out),
    ]) == 0  # fmt: skip
    continued = json.loads(out.read_text())
    assert continued["global_step"] == 12 and continued["objective"] == "clm"
    # before/after: the checkpoint records --init_from, so evaluate scored the folder it started from too,
    # as a run of the first model alone scores it (the folder is its export)
    alone = tmp_path / "first.json"
    assert cli_main.main([
        "evaluate", *args, "--data_prefix", str(lm_shards / "valid"), "--max_length", "64", "--output", str(alone),
    ]) == 0  # fmt: skip
    start = json.loads(alone.read_text())
    assert continued["base"]["model"] == str(hf) and continued["base"]["tokens"] == start["tokens"]
    for key in ("loss", "perplexity", "bits_per_byte"):
        assert continued["base"][key] == pytest.approx(start[key], rel=1e-5), key
    assert continued["loss"] < continued["base"]["loss"]
