"""Throughput logging: FLOPs per token, the peak-FLOPs table, perf/* in DVCLive and the progress bar,
and no effect at all on what is trained (bit-identical losses and weights with it on or off)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from gitnetic.training.progress import ProgressBar, si
from gitnetic.training.throughput import (
    PEAK_TFLOPS,
    compute_kind,
    describe_model,
    flops_per_token,
    matmul_params,
    peak_flops,
)
from tests.helpers import encode_files, module_and_data, stdlib_json_files, write_shard
from tests.helpers import tiny_gpt2 as gpt2

# ---------------------------------------------------------------------------- FLOPs and peaks


@pytest.mark.parametrize("tie", [True, False])
def test_flops_per_token_counts_matmuls_not_embedding_lookups(tie: bool) -> None:
    model = gpt2(500, tie_word_embeddings=tie)
    unique = {id(p): p for p in model.parameters()}.values()
    total = sum(p.numel() for p in unique)
    wte, wpe = 500 * 32, 64 * 32
    # tied: the one wte matrix is the output projection (counted), wpe is a lookup (not counted);
    # untied: the input wte is a lookup too, the separate lm_head matrix is counted
    expected = total - wpe if tie else total - wpe - wte
    assert matmul_params(model) == expected
    assert flops_per_token(model, 64) == 6 * expected + 12 * 2 * 32 * 64
    assert flops_per_token(model, 128) - flops_per_token(model, 64) == 12 * 2 * 32 * 64


def test_peak_flops_table_lookup_by_cuda_device_name() -> None:
    assert peak_flops("NVIDIA H100 80GB HBM3", "bf16") == pytest.approx(989.4e12)
    assert peak_flops("NVIDIA H100 PCIe", "bf16") == pytest.approx(756e12)
    assert peak_flops("NVIDIA H200", "bf16") == pytest.approx(989.4e12)  # dense, not the sparse 2 PF
    assert peak_flops("NVIDIA A100-SXM4-80GB", "tf32") == pytest.approx(156e12)
    assert peak_flops("NVIDIA L40S", "fp16") == pytest.approx(362e12)
    assert peak_flops("NVIDIA L4", "bf16") == pytest.approx(121e12)
    assert peak_flops("Tesla T4", "bf16") is None  # no bf16 tensor cores
    assert peak_flops("Some Future GPU", "bf16") is None
    assert peak_flops("NVIDIA H100 80GB HBM3", None) is None
    assert all({"fp32"} <= set(peaks) for peaks in PEAK_TFLOPS.values())
    cpu = torch.device("cpu")
    assert compute_kind("bf16-mixed", cpu) == "bf16" and compute_kind("16-mixed", cpu) == "fp16"
    assert compute_kind("32-true", cpu) == "fp32" and compute_kind("64-true", cpu) is None


def test_describe_model_and_si() -> None:
    assert describe_model(gpt2(500)).startswith("GPT2LMHeadModel, ")
    assert "(2 layers x 32)" in describe_model(gpt2(500))
    assert si(12345.6) == "12.3k" and si(2.5e6) == "2.5M" and si(987) == "987"


# ---------------------------------------------------------------------------- real training


def write_shards(tokenizer, out: Path) -> str:
    return write_shard(out / "train", encode_files(tokenizer, stdlib_json_files()))


def train(tokenizer, shards: str, out: Path, *, log_throughput: bool, progress: int = 0):
    """A real 6-step run (log every step); returns the module's final weights."""
    from gitnetic.training.trainer import TransformerTrainer

    trainer = TransformerTrainer(
        TransformerTrainer.Params(
            max_steps=6,
            save_dir="",
            log_every_n_steps=1,
            progress_bar_refresh_rate=progress,
            dvclive_dir=str(out),
            log_throughput=log_throughput,
            seed=5,
        )
    )
    model = gpt2(len(tokenizer))  # default dropout 0.1: the per-step reseeding is exercised too
    module, dm = module_and_data(
        tokenizer, model, shards, module={"learning_rate": 3e-3, "warmup_steps": 2},
        batch_size=4, max_length=32, packing=True, seed=5,
    )  # fmt: skip
    lightning_trainer = trainer.fit(module, dm)
    return {k: v.detach().clone() for k, v in module.state_dict().items()}, lightning_trainer, module


def tsv(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def test_throughput_in_dvclive_and_progress_bar_and_bit_identical_training(
    tokenizer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shards = write_shards(tokenizer, tmp_path)
    on, trainer, module = train(tokenizer, shards, tmp_path / "on", log_throughput=True, progress=1)
    bar_text = capsys.readouterr().out  # Lightning's tqdm bar writes to stdout
    off, _, _ = train(tokenizer, shards, tmp_path / "off", log_throughput=False)

    # nothing about training changes: every logged loss and every final weight is bit-identical
    for name in ("loss.tsv", "lr.tsv", "tokens.tsv"):
        assert tsv(tmp_path / "on/plots/metrics/train" / name) == tsv(
            tmp_path / "off/plots/metrics/train" / name
        )
    assert len(tsv(tmp_path / "on/plots/metrics/train/loss.tsv")) == 1 + 6
    assert on.keys() == off.keys() and all(torch.equal(on[k], off[k]) for k in on)

    # DVCLive: perf/* metrics with one row per logged step (so `dvc plots show` draws them)
    metrics = json.loads((tmp_path / "on/metrics.json").read_text())
    assert set(metrics["perf"]) == {"tokens_per_sec", "step_time_ms", "peak_memory_gib"}  # CPU: no MFU
    assert "perf" not in json.loads((tmp_path / "off/metrics.json").read_text())
    rows = tsv(tmp_path / "on/plots/metrics/perf/tokens_per_sec.tsv")
    assert rows[0] == "step\ttokens_per_sec" and [r.split("\t")[0] for r in rows[1:]] == list("123456")
    assert all(float(r.split("\t")[1]) > 0 for r in rows[1:])
    assert metrics["perf"]["peak_memory_gib"] > 0.01
    step_ms = [float(r.split("\t")[1]) for r in tsv(tmp_path / "on/plots/metrics/perf/step_time_ms.tsv")[1:]]
    assert len(step_ms) == 6 and all(ms > 0 for ms in step_ms)

    # the progress bar shows short names, not the logger's keys or v_num
    assert "tok/s=" in bar_text and "loss=" in bar_text
    assert "perf/tokens_per_sec" not in bar_text and "v_num" not in bar_text
    bar = next(c for c in trainer.callbacks if isinstance(c, ProgressBar))
    shown = bar.get_metrics(trainer, module)
    assert {"loss", "tok/s"} <= set(shown) and "MFU" not in shown
