"""The fine-tune rule of ``python -m gitnetic init --from MODEL_DIR``: full or LoRA, gradient
checkpointing, batch, tokens and steps for a pretrained model, one device and a compute budget.

The rule (docs/sizing.md, "Fine-tuning a pretrained model"), in order:

1. **Sequence length**: the model's position limit, at most 2048 tokens (code files rarely need more to
   learn a repository's style; longer windows cost activation memory linearly).
2. **Full or LoRA**: a full fine-tune when its peak memory (below) fits ``memory_fraction`` (90 %) of
   the device's memory with a micro-batch of one sequence and gradient checkpointing; else LoRA of rank
   ``r`` on the model family's attention projections (peft's defaults). If even LoRA does not fit, the
   plan is refused: the 16-bit weights alone are too large for the device.
3. **Gradient checkpointing and micro-batch**: the largest micro-batch (a power of two, at most 8
   sequences) that fits without checkpointing; if not even one sequence fits, checkpointing on and the
   largest micro-batch that fits with it.
4. **Tokens**: the train split's tokens times ``epochs`` (default 2 for a fine-tune: a pretrained model
   memorises a small repository quickly), at most what the budget pays for at
   ``flops_per_token = k x (params + layers x sequence x hidden)``, k = 6 for a full fine-tune (forward 2,
   backward 4), 4 for LoRA (no weight gradients for the frozen base), +2 with gradient checkpointing (the
   forward runs twice).
5. **Batch and steps**: about 200 optimizer steps of at most 128k tokens (at least one micro-batch),
   the rest of a step by gradient accumulation; warmup 5 % of the steps; learning rate 2e-5 for a full
   fine-tune, 2e-4 for LoRA (alpha = 2 r, dropout 0.05).

**Peak memory per device** (:func:`estimate_memory`), in bytes, for ``P`` parameters, ``A`` LoRA
adapter parameters, micro-batch ``b``, sequence ``s``, hidden size ``h``, ``L`` layers, vocabulary ``V``,
activation bytes ``e`` (2 in bf16, 4 in fp32)::

    full, bf16-mixed:  16 P (fp32 weights 4 + grads 4 + Adam moments 8)  + 2 P (autocast's bf16 weight copies)
    full, 32-true:     16 P
    LoRA, bf16-true:    2 P (frozen bf16 base, no grads, no optimizer)   + 16 A (adapter weights, grads, Adam)
    LoRA, 32-true:      4 P                                               + 16 A
    activations:       b s L x 17 h e       (Korthikanti et al. 2022: 34 s b h bytes per layer in 16 bits,
                                             attention scores not kept: PyTorch SDPA / flash attention)
      checkpointing:   b s L x h e  +  b s x 17 h e   (each layer's input, plus one layer recomputed)
    logits:            b s V x 12           (16-bit logits, their fp32 copy and log-softmax for the loss)
    overhead:          1.5 GB               (CUDA context, cuBLAS workspaces, allocator slack)

A 7B model's full fine-tune therefore needs 16 x 7e9 = 112 GB for its states alone, more than one 80 GB
GPU, while its LoRA run needs ~14 GB of bf16 weights plus activations. The estimate is an upper-end
approximation (the activation term assumes a 4h MLP); measure with ``train``'s ``perf/peak_mem`` and
adjust ``--gpu_memory_gb``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gitnetic.common.errors import ConfigError
from gitnetic.models.footprint import ModelFootprint
from gitnetic.pipeline.plan import Budget, bytes_per_token, human_count, human_duration

__all__ = [
    "DEFAULT_FINETUNE_EPOCHS",
    "FinetunePlan",
    "MemoryEstimate",
    "estimate_memory",
    "format_finetune_plan",
    "plan_finetune",
]

GB = 1e9
MAX_SEQUENCE = 2048
MAX_MICRO_BATCH = 8
MAX_TOKENS_PER_STEP = 2**17
TARGET_STEPS = 200
DEFAULT_FINETUNE_EPOCHS = 2.0
MEMORY_FRACTION = 0.9
OVERHEAD_BYTES = 1.5 * GB
ACTIVATION_FACTOR = 17  # x hidden x activation bytes, per token and layer (34 bytes in 16 bits)
LOGIT_BYTES = 12
LEARNING_RATE = {"full": 2e-5, "lora": 2e-4}
LORA_DROPOUT = 0.05


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak memory of one device in bytes, by part (see the module doc for each formula)."""

    weights: float  # the model's weights as trained (fp32 master weights, or the frozen 16-bit base)
    trainable_states: float  # gradients and Adam moments of what trains (+ LoRA adapter weights)
    autocast_copies: float  # bf16-mixed: 16-bit copies of the weights made by autocast
    activations: float
    logits: float
    overhead: float

    @property
    def states(self) -> float:
        """Weights, gradients and optimizer state: what does not depend on the batch."""
        return self.weights + self.trainable_states

    @property
    def total(self) -> float:
        return self.states + self.autocast_copies + self.activations + self.logits + self.overhead


def estimate_memory(
    footprint: ModelFootprint,
    *,
    method: str,
    precision: str,
    micro_batch: int,
    sequence: int,
    checkpointing: bool,
    lora_params: int = 0,
) -> MemoryEstimate:
    """Peak memory per device of one training step (formulas: module doc)."""
    params = footprint.params
    sixteen_bit = precision.startswith(("bf16", "16"))
    element = 2 if sixteen_bit else 4
    if method == "full":
        weights, trainable = 4.0 * params, 12.0 * params  # fp32 weights; grads 4 + Adam 8
        copies = 2.0 * params if precision.endswith("-mixed") else 0.0
    else:
        weights = (2.0 if precision == "bf16-true" else 4.0) * params
        trainable, copies = 16.0 * lora_params, 0.0
    tokens = micro_batch * sequence
    per_layer = ACTIVATION_FACTOR * footprint.hidden_size * element
    if checkpointing:
        activations = tokens * (footprint.num_layers * footprint.hidden_size * element + per_layer)
    else:
        activations = tokens * footprint.num_layers * per_layer
    logits = tokens * footprint.vocab_size * LOGIT_BYTES
    return MemoryEstimate(weights, trainable, copies, float(activations), float(logits), OVERHEAD_BYTES)


@dataclass(frozen=True)
class FinetunePlan:
    """Everything ``init --from`` decides, and the numbers behind it."""

    footprint: ModelFootprint
    method: str  # "full" | "lora"
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    lora_target_modules: list[str]
    lora_params: int
    precision: str
    gradient_checkpointing: bool
    memory: MemoryEstimate
    full_memory: MemoryEstimate  # the full fine-tune's estimate (micro-batch 1, checkpointing): why LoRA
    device_memory: float  # bytes
    corpus_bytes: int
    corpus_files: int
    corpus_tokens: int
    train_tokens: int
    usable_tokens: int
    epochs: float
    tokens_to_train: int
    limited_by: str  # "data" | "compute"
    max_length: int
    batch_size: int  # micro-batch, sequences
    accumulate_grad_batches: int
    max_steps: int
    warmup_steps: int
    learning_rate: float
    flops_per_token: float
    flops: float
    expected_seconds: float
    budget: Budget

    @property
    def trainable_params(self) -> int:
        return self.footprint.params if self.method == "full" else self.lora_params


def _fits(memory: MemoryEstimate, device_memory: float) -> bool:
    return memory.total <= MEMORY_FRACTION * device_memory


def _micro_batch(
    footprint: ModelFootprint, device_memory: float, sequence: int, **kw
) -> tuple[int, bool] | None:
    """The largest power-of-two micro-batch that fits, without checkpointing if any does; None if none."""
    for checkpointing in (False, True):
        batch = MAX_MICRO_BATCH
        while batch >= 1:
            memory = estimate_memory(
                footprint, micro_batch=batch, sequence=sequence, checkpointing=checkpointing, **kw
            )
            if _fits(memory, device_memory):
                return batch, checkpointing
            batch //= 2
    return None


def plan_finetune(
    footprint: ModelFootprint,
    budget: Budget,
    *,
    corpus_bytes: int,
    corpus_files: int = 0,
    corpus_tokens: int | None = None,
    train_fraction: float = 0.92,
    epochs: float = DEFAULT_FINETUNE_EPOCHS,
    device_memory_gb: float = 80.0,
    lora_r: int = 16,
    lora_target_modules: list[str] | None = None,
    max_length: int | None = None,
) -> FinetunePlan:
    """Apply the rule of the module doc. ``lora_target_modules`` default: the family's (peft's)."""
    if device_memory_gb <= 0 or lora_r < 1 or epochs <= 0:
        raise ConfigError("--gpu_memory_gb, --lora_r and --epochs must be positive")
    if corpus_bytes <= 0 and not corpus_tokens:
        raise ConfigError("the corpus is empty: no files matched; check --path/--include/--exclude")
    device = budget.device
    memory_bytes = device_memory_gb * GB
    limit = footprint.context or MAX_SEQUENCE
    sequence = min(max_length or MAX_SEQUENCE, limit)
    if max_length and max_length > limit:
        raise ConfigError(f"--max_length {max_length} is past the model's position limit {limit}")

    full_precision = "bf16-mixed" if device == "gpu" else "32-true"
    full_memory = estimate_memory(
        footprint,
        method="full",
        precision=full_precision,
        micro_batch=1,
        sequence=sequence,
        checkpointing=True,
    )
    chosen = _micro_batch(footprint, memory_bytes, sequence, method="full", precision=full_precision)
    method, precision, adapters, targets = "full", full_precision, 0, []
    if chosen is None:
        from gitnetic.models.footprint import default_lora_targets

        targets = list(lora_target_modules or default_lora_targets(footprint))
        missing = sorted(set(targets) - set(footprint.target_modules_present(targets)))
        if missing:
            raise ConfigError(
                f"--lora_target_modules {', '.join(missing)}: no such weight in {footprint.folder}; "
                "name modules of the model (e.g. q_proj v_proj)"
            )
        method, precision = "lora", ("bf16-true" if device == "gpu" else "32-true")
        adapters = footprint.lora_params(lora_r, targets)
        chosen = _micro_batch(
            footprint, memory_bytes, sequence, method="lora", precision=precision, lora_params=adapters
        )
        if chosen is None:
            weights = estimate_memory(
                footprint, method="lora", precision=precision, micro_batch=1, sequence=sequence,
                checkpointing=True, lora_params=adapters,
            )  # fmt: skip
            where, fix = (
                (f"{device_memory_gb:g} GB", "a larger --gpu_memory_gb")
                if device == "gpu"
                else (f"this machine's {device_memory_gb:.0f} GB of memory", "--gpu_hours on a GPU")
            )
            raise ConfigError(
                f"{footprint.folder} does not fit {where} even with LoRA and gradient checkpointing "
                f"(~{weights.total / GB:.0f} GB at one sequence of {sequence}: {weights.weights / GB:.0f} GB "
                f"of weights); use {fix}, a shorter --max_length or a smaller model"
            )
    micro, checkpointing = chosen
    memory = estimate_memory(
        footprint, method=method, precision=precision, micro_batch=micro, sequence=sequence,
        checkpointing=checkpointing, lora_params=adapters,
    )  # fmt: skip

    tokens = int(corpus_tokens if corpus_tokens else corpus_bytes / bytes_per_token(footprint.vocab_size))
    train_tokens = max(1, int(tokens * train_fraction))
    usable = max(1, int(train_tokens * epochs))
    factor = (6.0 if method == "full" else 4.0) + (2.0 if checkpointing else 0.0)
    per_token = factor * (footprint.params + footprint.num_layers * sequence * footprint.hidden_size)
    affordable = int(budget.seconds * budget.flops / per_token)
    to_train = max(1, min(usable, affordable))
    per_step = min(
        MAX_TOKENS_PER_STEP, 1 << max(0, int(math.floor(math.log2(max(to_train / TARGET_STEPS, 1)))))
    )
    sequences = max(1, per_step // sequence)
    micro = min(micro, sequences)
    accumulate = max(1, sequences // micro)
    step_tokens = micro * accumulate * sequence
    steps = max(1, math.ceil(to_train / step_tokens))
    flops = float(steps * step_tokens * per_token)
    if micro != chosen[0]:  # fewer sequences per step than fit: the estimate is for what runs
        memory = estimate_memory(
            footprint, method=method, precision=precision, micro_batch=micro, sequence=sequence,
            checkpointing=checkpointing, lora_params=adapters,
        )  # fmt: skip
    return FinetunePlan(
        footprint=footprint,
        method=method,
        lora_r=lora_r,
        lora_alpha=2 * lora_r,
        lora_dropout=LORA_DROPOUT,
        lora_target_modules=targets,
        lora_params=adapters,
        precision=precision,
        gradient_checkpointing=checkpointing,
        memory=memory,
        full_memory=full_memory,
        device_memory=memory_bytes,
        corpus_bytes=corpus_bytes,
        corpus_files=corpus_files,
        corpus_tokens=tokens,
        train_tokens=train_tokens,
        usable_tokens=usable,
        epochs=epochs,
        tokens_to_train=steps * step_tokens,
        limited_by="data" if usable <= affordable else "compute",
        max_length=sequence,
        batch_size=micro,
        accumulate_grad_batches=accumulate,
        max_steps=steps,
        warmup_steps=max(1, round(0.05 * steps)),
        learning_rate=LEARNING_RATE[method],
        flops_per_token=per_token,
        flops=flops,
        expected_seconds=flops / budget.flops,
        budget=budget,
    )


def format_finetune_plan(plan: FinetunePlan) -> str:
    """The plan as the short table ``init --from`` prints (and writes atop params.yaml)."""
    f, m, b = plan.footprint, plan.memory, plan.budget
    unit = "GPU" if b.device == "gpu" else "device"
    usable = MEMORY_FRACTION * plan.device_memory / GB
    if plan.method == "full":
        method = f"full fine-tune ({human_count(f.params)} trainable)"
    else:
        method = (
            f"LoRA r={plan.lora_r} alpha={plan.lora_alpha} on {', '.join(plan.lora_target_modules)} "
            f"({human_count(plan.lora_params)} trainable, {100 * plan.lora_params / f.params:.2f}%); a full "
            f"fine-tune needs ~{plan.full_memory.total / GB:.0f} GB > {usable:.0f} GB usable"
        )
    accumulate = f" x {plan.accumulate_grad_batches} accumulated" if plan.accumulate_grad_batches > 1 else ""
    limited = f"the corpus, {plan.epochs:g} epochs" if plan.limited_by == "data" else "the budget"
    parts = (
        ("weights", m.weights), ("grads/Adam", m.trainable_states), ("autocast copies", m.autocast_copies),
        ("activations", m.activations), ("logits", m.logits), ("overhead", m.overhead),
    )  # fmt: skip
    breakdown = " + ".join(f"{name} {value / GB:.1f}" for name, value in parts if value)
    rows = [
        ("model", f"{f.folder}: {f.model_type}, {human_count(f.params)} parameters (from {f.source}), "
                  f"{f.num_layers} layers x {f.hidden_size}, vocabulary {f.vocab_size}"),
        ("method", method),
        ("precision", plan.precision + (" (base weights loaded in bf16)" if plan.precision == "bf16-true" else
                                        " (fp32 master weights, bf16 matmuls)" if plan.precision == "bf16-mixed" else "")),
        ("checkpointing", "on (activations recomputed in backward)" if plan.gradient_checkpointing else "off"),
        ("corpus", f"{plan.corpus_files} files, {plan.corpus_bytes / 1e6:.2f} MB -> ~{human_count(plan.corpus_tokens)} "
                   f"tokens ({human_count(plan.train_tokens)} in train)"),
        ("tokens", f"{human_count(plan.tokens_to_train)} = {plan.max_steps} steps x {plan.batch_size} x "
                   f"{plan.max_length}{accumulate} (limited by {limited})"),
        ("optimizer", f"AdamW lr {plan.learning_rate:g}, warmup {plan.warmup_steps} steps"),
        ("compute", f"{plan.flops:.2e} FLOPs at {b.flops / 1e12:g} TFLOP/s -> ~{human_duration(plan.expected_seconds)} "
                    f"(budget {human_duration(b.seconds)})"),
        (f"peak {unit} mem", f"~{m.total / GB:.1f} GB of {plan.device_memory / GB:.0f} GB: {breakdown}"),
    ]  # fmt: skip
    if not f.has_weights:
        rows.append(("note", f"{f.folder} has no weights yet: training needs them there"))
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
