"""Training throughput you can watch: tokens/s, step time, MFU and peak memory, at no per-step cost.

Why not Lightning's ``ThroughputMonitor``: it calls ``torch.cuda.synchronize()`` after *every* batch
(stalling the launch queue), its rates appear only once a 100-update window is full, and its peak-FLOPs
table lists some GPUs with their 2:4-sparsity figures (H200) or not at all under their CUDA names. Here
the clock is read only on the steps Lightning sends metrics to the loggers (``log_every_n_steps``) —
where Lightning turns the logged loss into a Python number, i.e. synchronises, anyway — and the rates
are the mean over the steps since the previous such step. Between them the callback only adds up batch
shapes (host integers), so it never touches the device and never changes what is computed: losses are
bit-identical with it on or off.

Logged (DVCLive: ``dvclive/plots/metrics/perf/*.tsv``, so ``dvc plots show`` draws them):

* ``perf/tokens_per_sec``: tokens per second of the whole job (all ranks), padding included — what the
  model computed on; the ``train/tokens`` metric counts real (non-padding) tokens;
* ``perf/step_time_ms``: wall milliseconds per optimizer step (includes data loading and logging);
* ``perf/mfu``: model FLOPs utilisation per device, 0..1 (GPUs with a known peak, see
  :data:`PEAK_TFLOPS`, or ``--peak_tflops``); FLOPs per token from the model shape (:func:`flops_per_token`);
* ``perf/peak_memory_gib``: on CUDA ``torch.cuda.max_memory_allocated`` (tensors), on CPU the process's
  peak resident set size.

The first interval also holds start-up work (first-batch allocation, ``torch.compile``), so read the rates
from the second logged value on. Validation time is excluded from the training rates.
"""

from __future__ import annotations

import logging
import resource
import sys
import time
from typing import Any

import torch
from lightning.pytorch.callbacks import Callback
from torch import nn

__all__ = [
    "PEAK_TFLOPS",
    "ThroughputLogger",
    "compute_kind",
    "describe_model",
    "flops_per_token",
    "matmul_params",
    "peak_flops",
]

# Dense (no 2:4 sparsity) peak tensor-core throughput in TFLOP/s per GPU, from NVIDIA's data sheets and
# architecture white papers. Keys are matched as substrings of ``torch.cuda.get_device_name()`` in this
# order (the first match wins, so the more specific names come first). "fp32" is plain CUDA-core FP32,
# "tf32" what FP32 matmuls get with TF32 enabled (gitnetic enables it on Ampere and newer).
# GeForce cards: FP16/BF16 with FP32 accumulation (what training uses).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "h200 nvl": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "h200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM
    "h100 nvl": {"fp32": 60.0, "tf32": 417.5, "bf16": 835.5, "fp16": 835.5},
    "h100 pcie": {"fp32": 51.2, "tf32": 378.0, "bf16": 756.0, "fp16": 756.0},
    "h100": {"fp32": 66.9, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},  # SXM ("H100 80GB HBM3")
    "gh200": {"fp32": 67.0, "tf32": 494.7, "bf16": 989.4, "fp16": 989.4},
    "a100": {"fp32": 19.5, "tf32": 156.0, "bf16": 312.0, "fp16": 312.0},
    "a10g": {"fp32": 31.2, "tf32": 35.0, "bf16": 70.0, "fp16": 70.0},
    "a10": {"fp32": 31.2, "tf32": 62.5, "bf16": 125.0, "fp16": 125.0},
    "l40s": {"fp32": 91.6, "tf32": 183.0, "bf16": 362.0, "fp16": 362.0},
    "l40": {"fp32": 90.5, "tf32": 90.5, "bf16": 181.0, "fp16": 181.0},
    "l4": {"fp32": 30.3, "tf32": 60.0, "bf16": 121.0, "fp16": 121.0},
    "a6000": {"fp32": 38.7, "tf32": 77.4, "bf16": 154.8, "fp16": 154.8},  # RTX A6000 (Ampere)
    "rtx 4090": {"fp32": 82.6, "tf32": 82.6, "bf16": 165.2, "fp16": 165.2},
    "rtx 3090": {"fp32": 35.6, "tf32": 35.6, "bf16": 71.0, "fp16": 71.0},
    "v100": {"fp32": 15.7, "fp16": 125.0},  # SXM2; no bf16, no tf32
    "t4": {"fp32": 8.1, "fp16": 65.0},
}

_GIB = 1024**3
logger = logging.getLogger(__name__)


def compute_kind(precision: str, device: torch.device) -> str | None:
    """The :data:`PEAK_TFLOPS` column a Lightning ``precision`` computes its matmuls in (None: unknown)."""
    p = str(precision)
    if p.startswith("bf16"):
        return "bf16"
    if p.startswith("16"):
        return "fp16"
    if p in ("32", "32-true"):
        tf32 = device.type == "cuda" and torch.get_float32_matmul_precision() != "highest"
        return "tf32" if tf32 else "fp32"
    return None  # fp64, transformer-engine (fp8), ...: pass --peak_tflops


def peak_flops(device_name: str, kind: str | None) -> float | None:
    """Peak FLOP/s of one ``device_name`` GPU for ``kind`` (fp32/tf32/bf16/fp16), or None if not listed."""
    if kind is None:
        return None
    name = device_name.lower()
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            value = peaks.get(kind)
            return None if value is None else value * 1e12
    return None


def matmul_params(model: nn.Module, frozen: bool = False) -> int:
    """Parameters that take part in a matrix multiply per token: all but the embedding *lookups*
    (with ``frozen``: only those that do not train).

    Token and position embeddings cost no FLOPs; the output projection does, also when it shares its
    weight with the token embedding (GPT-2), so it is counted once either way.
    """
    lookups = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    get_output = getattr(model, "get_output_embeddings", None)
    output = get_output() if callable(get_output) else None
    if output is not None and getattr(output, "weight", None) is not None:
        lookups.discard(id(output.weight))
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        if id(p) not in lookups and not (frozen and p.requires_grad):
            total += p.numel()
    return total


def _shape(model: nn.Module) -> tuple[int, int]:
    """``(layers, attention width)`` from a Hugging Face config; ``(0, 0)`` when the model has none."""
    config = getattr(model, "config", None)
    layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
    width = getattr(config, "hidden_size", None) or getattr(config, "n_embd", None)
    heads = getattr(config, "num_attention_heads", None)
    head_dim = getattr(config, "head_dim", None)
    if heads and head_dim:
        width = heads * head_dim
    return int(layers or 0), int(width or 0)


def flops_per_token(model: nn.Module, seq_len: int, *, n_params: int | None = None) -> float:
    """Training FLOPs (forward + backward) per token: ``6 N + 12 L d T`` (PaLM, appendix B).

    ``N`` = :func:`matmul_params`, ``L`` layers, ``d`` attention width, ``T`` the sequence length. As in
    nanoGPT and torchtitan the causal mask is not discounted and recomputation is not counted, so MFU
    compares runs and setups, not kernels. A frozen weight (the base of a LoRA run) gets no weight
    gradient, so it costs 4 FLOPs a token (forward 2, input gradient 2), not 6.
    """
    layers, width = _shape(model)
    n = matmul_params(model) if n_params is None else n_params
    return 6.0 * n - 2.0 * matmul_params(model, frozen=True) + 12.0 * layers * width * seq_len


def describe_model(module: nn.Module) -> str:
    """``GPT2LMHeadModel, 1.71M parameters (3 layers x 128)``: the one line that replaces Lightning's table;
    with frozen weights (LoRA) it says how many train: ``..., 1.71M parameters (...); 12.3k train (0.72%)``."""
    model = getattr(module, "model", module)
    unique = {id(p): p for p in model.parameters()}.values()
    n = sum(p.numel() for p in unique)
    trainable = sum(p.numel() for p in unique if p.requires_grad)
    layers, width = _shape(model)
    shape = f" ({layers} layer{'s' * (layers != 1)} x {width})" if layers and width else ""
    base = getattr(model, "get_base_model", None)  # a peft model: name what it adapts
    name = f"{type(base()).__name__} with LoRA adapters" if callable(base) else type(model).__name__
    trains = f"; {_count(trainable)} train ({100 * trainable / n:.2g}%)" if n and trainable < n else ""
    return f"{name}, {_count(n)} parameters{shape}{trains}"


def _count(n: float) -> str:
    for factor, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.3g}{suffix}"
    return f"{n:.0f}"


class ThroughputLogger(Callback):
    """Logs ``perf/*`` (see the module docstring) on the steps Lightning sends to the loggers.

    ``peak_flops`` (FLOP/s per device) overrides the :data:`PEAK_TFLOPS` lookup.
    """

    def __init__(self, peak_flops: float | None = None, prog_bar: bool = True) -> None:
        super().__init__()
        self.peak_override = peak_flops
        self.prog_bar = prog_bar
        self.peak: float | None = None
        self.world_size = 1
        self._n_params = 0
        self._model: nn.Module | None = None
        self._fpt_cache: dict[int, float] = {}
        self._reset()

    def _reset(self) -> None:
        self._t_last = self._t_start = time.perf_counter()
        self._val_start: float | None = None
        self._val_total = 0.0
        self._steps = self._tokens = 0
        self._flops = 0.0
        self._total_steps = self._total_tokens = 0
        self._total_flops = 0.0

    # ------------------------------------------------------------------ set-up
    def setup(self, trainer: Any, pl_module: Any, stage: str) -> None:
        model = getattr(pl_module, "model", pl_module)
        self._model = model
        self._n_params = matmul_params(model)
        self._fpt_cache = {}
        self.world_size = int(trainer.world_size)
        device = trainer.strategy.root_device
        self.peak = self.peak_override
        if self.peak is None and device.type == "cuda":
            kind = compute_kind(str(trainer.precision), device)
            self.peak = peak_flops(torch.cuda.get_device_name(device), kind)

    def _flops_per_token(self, seq_len: int) -> float:
        value = self._fpt_cache.get(seq_len)
        if value is None:
            assert self._model is not None
            value = self._fpt_cache[seq_len] = flops_per_token(self._model, seq_len, n_params=self._n_params)
        return value

    # ------------------------------------------------------------------ counting (host integers only)
    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        self._reset()

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        shape = _batch_shape(batch)
        if shape is not None:
            rows, seq_len = shape
            flops = rows * seq_len * self._flops_per_token(seq_len)
            self._tokens += rows * seq_len
            self._flops += flops
            self._total_tokens += rows * seq_len
            self._total_flops += flops
        if not _stepped(trainer, batch_idx):
            return  # mid gradient accumulation: the step (and its optimizer time) is not over
        self._steps += 1
        self._total_steps += 1
        # whether Lightning logs this step: on a private connector only (tests/training/
        # test_lightning_internals.py fails if an upgrade moves it)
        if trainer._logger_connector.should_update_logs:  # noqa: SLF001
            self._emit(trainer, pl_module)

    def _emit(self, trainer: Any, pl_module: Any) -> None:
        device = trainer.strategy.root_device
        if device.type == "cuda":
            torch.cuda.synchronize(device)  # only here, on a logging step, where Lightning syncs anyway
        now = time.perf_counter()
        elapsed = max(now - self._t_last, 1e-9)
        metrics = {
            "perf/tokens_per_sec": self._tokens * self.world_size / elapsed,
            "perf/step_time_ms": 1000.0 * elapsed / self._steps,
            "perf/peak_memory_gib": _peak_memory(device) / _GIB,
        }
        if self.peak:
            metrics["perf/mfu"] = self._flops / elapsed / self.peak
        shown = {"perf/tokens_per_sec", "perf/mfu"} if self.prog_bar else set()
        for name, value in metrics.items():
            pl_module.log(name, float(value), on_step=True, on_epoch=False, prog_bar=name in shown)
        self._t_last = now
        self._steps = self._tokens = 0
        self._flops = 0.0

    # ------------------------------------------------------------------ validation is not training time
    def on_validation_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.sanity_checking:
            self._val_start = time.perf_counter()

    def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
        if self._val_start is not None:
            spent = time.perf_counter() - self._val_start
            self._t_last += spent
            self._val_total += spent
            self._val_start = None

    # ------------------------------------------------------------------ the run in one line
    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero or not self._total_steps:
            return
        elapsed = max(time.perf_counter() - self._t_start - self._val_total, 1e-9)
        tokens = self._total_tokens * self.world_size
        line = (
            f"train: {self._total_steps} steps, {tokens:,} tokens in {_duration(elapsed)} "
            f"({tokens / elapsed:,.0f} tokens/s"
        )
        if self.peak:
            line += f", MFU {100 * self._total_flops / elapsed / self.peak:.1f}%"
        line += f", peak memory {_peak_memory(trainer.strategy.root_device) / _GIB:.2f} GiB)"
        if self._val_total:
            line += f"; validation {_duration(self._val_total)}"
        logger.info(line)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(seconds, 60)
    return f"{int(minutes)}m{secs:04.1f}s" if minutes else f"{secs:.1f}s"


def _batch_shape(batch: Any) -> tuple[int, int] | None:
    """``(rows, sequence length)`` of a batch's ``input_ids`` (shape only: no device access)."""
    ids = batch.get("input_ids") if isinstance(batch, dict) else None
    if ids is None and isinstance(batch, list | tuple) and batch:
        ids = batch[0]
    shape = getattr(ids, "shape", None)
    if shape is None or len(shape) != 2:
        return None
    return int(shape[0]), int(shape[1])


def _stepped(trainer: Any, batch_idx: int) -> bool:
    """Whether this batch ended with an optimizer step (not mid gradient accumulation)."""
    accumulate = int(getattr(trainer, "accumulate_grad_batches", 1) or 1)
    return accumulate == 1 or (batch_idx + 1) % accumulate == 0


def _peak_memory(device: torch.device) -> float:
    """Peak bytes: CUDA tensors on ``device`` (a host-side counter, no sync) or the process's peak RSS."""
    if device.type == "cuda":
        return float(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(rss if sys.platform == "darwin" else rss * 1024)  # Linux reports KiB
