"""TransformerTrainer: flag → lightning.Trainer mapping, pass-through flags, checkpoint cadence, resume paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError
from gitnetic.training.trainer import (
    TransformerTrainer,
    lightning_passthrough_params,
    trainer_kwargs_from_namespace,
)
from tests.helpers import encode_files, module_and_data, stdlib_json_files, tiny_gpt2, write_shard

Params = TransformerTrainer.Params


def kinds(objs) -> list[str]:
    return [type(o).__name__ for o in objs]


# ---------------------------------------------------------------------------- mapping


def test_gpu_flags_map_to_accelerator_devices_strategy_and_nodes(tmp_path: Path) -> None:
    trainer = TransformerTrainer(
        Params(
            gpus=2,
            strategy="ddp",
            num_nodes=3,
            precision="bf16-mixed",
            save_dir=str(tmp_path),
            dvclive_dir="",
        )
    )
    kw = trainer.lightning_kwargs()
    assert (kw["accelerator"], kw["devices"], kw["strategy"], kw["num_nodes"]) == ("gpu", 2, "ddp", 3)
    assert kw["precision"] == "bf16-mixed"
    assert kw["use_distributed_sampler"] is False  # the datamodule shards batches itself
    assert kw["logger"] is False  # no DVCLive, no wandb: no default TensorBoard logger either


def test_cpu_defaults_and_overrides(tmp_path: Path) -> None:
    kw = TransformerTrainer(Params(save_dir=str(tmp_path), dvclive_dir="")).lightning_kwargs()
    assert (kw["accelerator"], kw["devices"], kw["precision"], kw["max_epochs"]) == ("cpu", 1, "32-true", -1)
    kw = TransformerTrainer(Params(gpus=-1, devices="0,1", accelerator="cuda")).lightning_kwargs()
    assert (kw["accelerator"], kw["devices"]) == ("cuda", "0,1")
    kw = TransformerTrainer(Params(gpus=1, devices="4")).lightning_kwargs()
    assert (kw["accelerator"], kw["devices"]) == ("gpu", 4)
    # extra kwargs win, extra callbacks are appended
    from lightning.pytorch.callbacks import LearningRateMonitor

    extra = LearningRateMonitor()
    kw = TransformerTrainer(
        Params(dvclive_dir=""), max_time="00:00:10:00", callbacks=[extra]
    ).lightning_kwargs()
    assert kw["max_time"] == "00:00:10:00" and kw["callbacks"][-1] is extra


def test_intervals_progress_and_loggers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("WANDB_MODE", "WANDB_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: not logged in to wandb
    p = Params(
        val_check_interval=100,
        accumulate_grad_batches=4,
        progress_bar_refresh_rate=0,
        save_dir=str(tmp_path / "ckpt"),
        dvclive_dir=str(tmp_path / "dvclive"),
        wandb_project="proj",
        wandb_name="run",
        wandb_id="abc123",
    )
    kw = TransformerTrainer(p).lightning_kwargs()
    # optimizer steps → batches, counted across epochs
    assert (kw["val_check_interval"], kw["check_val_every_n_epoch"]) == (400, None)
    assert kw["enable_progress_bar"] is False and "TQDMProgressBar" not in kinds(kw["callbacks"])
    assert kinds(kw["callbacks"]) == [
        "StepCheckpoint",
        "ThroughputLogger",
        "GracefulInterrupt",
        "StopOnDivergence",
    ]
    assert kinds(kw["logger"]) == ["StepDVCLiveLogger", "WandbLogger"]
    wandb = kw["logger"][1]
    assert wandb._offline is True and wandb._wandb_init["id"] == "abc123"
    assert wandb._wandb_init["resume"] == "allow" and wandb._project == "proj"
    kw = TransformerTrainer(Params(val_check_interval=0.25, progress_bar_refresh_rate=10)).lightning_kwargs()
    assert kw["val_check_interval"] == 0.25 and "check_val_every_n_epoch" not in kw
    assert kw["callbacks"][1].refresh_rate == 10


def test_bad_params_are_one_line_config_errors() -> None:
    bad = [
        {"max_steps": -1},  # and max_epochs -1: would never stop
        {"max_steps": 0},
        {"precision": "bf17"},
        {"val_check_interval": 1.5},
        {"accumulate_grad_batches": 0},
        {"gpus": -2},
    ]
    for kwargs in bad:
        with pytest.raises(ConfigError) as info:
            Params(**kwargs)
        assert "\n" not in str(info.value), kwargs


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_asking_for_gpus_without_one_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="use --gpus 0 to train on CPU"):
        TransformerTrainer(Params(gpus=2, dvclive_dir="", save_dir="")).build()


# ---------------------------------------------------------------------------- argparse


def test_flags_and_lightning_pass_through(tmp_path: Path) -> None:
    parser = DataclassArgumentParser()
    TransformerTrainer.add_argparse_params(parser)
    config = tmp_path / "params.yaml"
    config.write_text("train:\n  max_steps: 300\n  limit_val_batches: 0.5\n  seed: 3\n")
    argv = [
        "--config",
        f"{config}:train",
        "--gpus",
        "2",
        "--val_check_interval",
        "100",
        "--deterministic",
        "--max_time",
        "00:01:00:00",
        "--num_sanity_val_steps",
        "0",
        "--gradient_clip_val",
        "1.0",
    ]
    params, namespace = parser.parse_args_into_dataclasses(argv)
    assert isinstance(params, Params)
    assert (params.gpus, params.max_steps, params.val_check_interval, params.seed) == (2, 300, 100, 3)
    assert isinstance(params.val_check_interval, int) and params.gradient_clip_val == 1.0
    assert trainer_kwargs_from_namespace(namespace) == {
        "deterministic": True,
        "max_time": "00:01:00:00",
        "num_sanity_val_steps": 0,
        "limit_val_batches": 0.5,
    }
    names = set(lightning_passthrough_params())
    assert {"limit_train_batches", "fast_dev_run", "profiler", "detect_anomaly"} <= names
    assert not names & {"logger", "callbacks", "plugins", "max_steps", "precision", "use_distributed_sampler"}
    with pytest.raises(SystemExit):
        parser.parse_args_into_dataclasses(["--limit_val_batches", "lots"])


# ---------------------------------------------------------------------------- real runs


@pytest.fixture(scope="module")
def train_prefix(tokenizer, tmp_path_factory: pytest.TempPathFactory) -> str:
    out = tmp_path_factory.mktemp("shards") / "train"
    return write_shard(out, encode_files(tokenizer, stdlib_json_files()))


def _fit(tokenizer, train_prefix: str, params, val_prefix: str | None = None, **kwargs):
    torch.set_num_threads(1)
    trainer = TransformerTrainer(params, enable_model_summary=False, enable_progress_bar=False, **kwargs)
    model = tiny_gpt2(tokenizer, n_embd=16, n_layer=1, n_positions=32)
    module, dm = module_and_data(
        tokenizer, model, train_prefix, val_prefix, module={"warmup_steps": 2}, batch_size=4, max_length=32,
        packing=True,
    )  # fmt: skip
    return trainer.fit(module, dm), module


def test_checkpoint_cadence_final_and_last(tokenizer, train_prefix: str, tmp_path: Path) -> None:
    save_dir = tmp_path / "ckpt"
    params = Params(
        max_steps=12, save_step_frequency=5, num_last_checkpoints=2, save_dir=str(save_dir), dvclive_dir=""
    )
    trainer, _ = _fit(tokenizer, train_prefix, params)
    files = sorted(p.name for p in save_dir.iterdir())
    # steps 5 and 10 by frequency, 12 at the end; only the newest 2 kept; no temp files left behind
    assert files == ["checkpoint_last.ckpt", "checkpoint_step10.ckpt", "checkpoint_step12.ckpt"]
    last = torch.load(save_dir / "checkpoint_last.ckpt", weights_only=False, map_location="cpu")
    assert last["global_step"] == 12
    assert (save_dir / "checkpoint_last.ckpt").read_bytes() == (
        save_dir / "checkpoint_step12.ckpt"
    ).read_bytes()
    assert last["gitnetic"]["tokens_seen"] == 12 * 4 * 32
    step10 = torch.load(save_dir / "checkpoint_step10.ckpt", weights_only=False, map_location="cpu")
    assert step10["global_step"] == 10
    assert all(k.startswith("model.") for k in step10["state_dict"])  # HF weights under "model."
    assert trainer.global_step == 12


def test_step_checkpoint_on_an_epoch_end_is_not_deferred_to_validation(tokenizer, tmp_path: Path) -> None:
    """Lightning defers saves on an epoch's last batch until the next validation; ours must not wait."""
    ids = np.arange(5, 5 + 32 * 12) % len(tokenizer)
    for split, n_tokens in (("train", 32 * 12), ("valid", 64)):  # packed: 12 blocks of 32 = 3 batches of 4
        write_shard(tmp_path / split, [ids[:n_tokens]])
    save_dir = tmp_path / "ckpt"
    params = Params(
        max_steps=7,
        save_step_frequency=3,
        num_last_checkpoints=-1,
        val_check_interval=2,  # validation at steps 2, 4, 6: not right after step 3 (an epoch end)
        save_dir=str(save_dir),
        dvclive_dir="",
    )
    _fit(tokenizer, str(tmp_path / "train"), params, val_prefix=str(tmp_path / "valid"))
    files = sorted(p.name for p in save_dir.iterdir())
    assert files == [
        "checkpoint_last.ckpt",
        "checkpoint_step3.ckpt",
        "checkpoint_step6.ckpt",
        "checkpoint_step7.ckpt",
    ]
    for step in (3, 6, 7):
        ckpt = torch.load(save_dir / f"checkpoint_step{step}.ckpt", weights_only=False, map_location="cpu")
        assert ckpt["global_step"] == step


def test_resume_from_last_continues_the_step_count(tokenizer, train_prefix: str, tmp_path: Path) -> None:
    save_dir = tmp_path / "ckpt"
    base = {"save_step_frequency": 4, "save_dir": str(save_dir), "dvclive_dir": str(tmp_path / "dvclive")}
    base["log_every_n_steps"] = 1
    fresh = TransformerTrainer(Params(resume_from_checkpoint="last", **base))
    assert fresh.resolve_checkpoint() is None  # nothing saved yet: a fresh start, not an error
    _fit(tokenizer, train_prefix, Params(max_steps=4, **base))
    trainer, module = _fit(
        tokenizer, train_prefix, Params(max_steps=6, resume_from_checkpoint="last", **base)
    )
    assert trainer.global_step == 6 and module.tokens_seen == 6 * 4 * 32
    assert trainer.ckpt_path == str(save_dir / "checkpoint_last.ckpt")
    # DVCLive continued the same metrics history instead of starting over; x axis = optimizer steps
    rows = (tmp_path / "dvclive" / "plots" / "metrics" / "train" / "tokens.tsv").read_text().splitlines()[1:]
    assert [r.split("\t") for r in rows] == [[str(s), f"{s * 4 * 32}.0"] for s in range(1, 7)]
