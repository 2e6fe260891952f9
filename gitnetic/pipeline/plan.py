"""The sizing rule of ``python -m gitnetic init``: vocabulary, model, tokens and steps from corpus size and budget.

The rule (documented with worked examples in docs/sizing.md), in order:

1. **Vocabulary** grows with the square root of the corpus bytes: ``3.3 * sqrt(bytes)`` rounded to a
   power of two, clamped to [512, 32768] (6 MB of stdlib -> 8192, the default pipeline's vocabulary;
   100 KB -> 1024; 500 MB -> 32768). A small corpus cannot fill a large vocabulary, and embedding rows
   that are rarely seen are wasted parameters.
2. **Tokens** are estimated from bytes: byte-level BPE on code packs ``3.9 + 0.35 * log2(vocab / 8192)``
   bytes per token (3.9 at 8k, measured on the default stdlib corpus: 5.5 MB -> 1.4M train tokens).
3. **Usable tokens** are the train split's tokens times ``epochs`` (default 4: repeating data up to about
   4 epochs is almost as good as new data, Muennighoff et al. 2023, "Scaling Data-Constrained LMs").
4. **Model**: the largest GPT-2 shape of :data:`LADDER` whose Chinchilla token count (``tokens_per_param``
   = 20 tokens per non-embedding parameter, Hoffmann et al. 2022) fits both the usable tokens and the
   compute budget (``FLOPs = tokens * flops_per_token``, ``6 * (non-embedding params + vocab * width)``
   plus attention, at the budget's throughput); the smallest shape when none fits. Non-embedding
   parameters (Kaplan et al. 2020) because at these sizes the embedding table would dominate the count.
5. **Tokens to train**: the whole budget's worth of tokens for that model, at most the usable tokens.
6. **Batch and steps**: at least about 200 optimizer steps: tokens per step = tokens to train / 200
   rounded down to a power of two, at least one sequence, at most 16 x 128 tokens on CPU and 0.5M on GPU
   (micro-batches of at most 32 sequences, the rest by gradient accumulation); steps = tokens to train /
   tokens per step; warmup 8% of the steps; validation and checkpoints every half run.

Throughput: on CPU, ``cpu_gflops`` (default 14 GFLOP/s per core, measured: the default pipeline trains
250 steps of 16 x 128 tokens of its 3 x 128 GPT-2 in 185 s on this project's 2-core VM); on GPU
``gpu_tflops`` effective (default 100 TFLOP/s, about 30-40% of an A100's or 10% of an H100's bf16 peak,
what small models reach). Both are flags: measure yours and pass it.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass

from gitnetic.common.errors import ConfigError

__all__ = [
    "LADDER",
    "Budget",
    "human_count",
    "human_duration",
    "ModelShape",
    "Plan",
    "bytes_per_token",
    "default_cpu_flops",
    "format_plan",
    "plan_run",
    "vocab_size_for",
]

MIN_VOCAB, MAX_VOCAB = 512, 32768
VOCAB_PER_SQRT_BYTE = 3.3
TOKENS_PER_PARAM = 20.0  # Chinchilla
DEFAULT_EPOCHS = 4.0
TARGET_STEPS = 200
CPU_GFLOPS_PER_CORE = 14.0
DEFAULT_GPU_TFLOPS = 100.0
MAX_BATCH = {"cpu": 16, "gpu": 32}  # sequences per forward pass
MAX_TOKENS_PER_STEP = {"cpu": 16 * 128, "gpu": 2**19}  # GPU: gradient accumulation up to 0.5M tokens


@dataclass(frozen=True)
class ModelShape:
    """One GPT-2 shape: layers, width, heads, context, and the peak learning rate that suits it."""

    n_layer: int
    n_embd: int
    n_head: int
    context: int
    learning_rate: float

    @property
    def non_embedding_params(self) -> int:
        return 12 * self.n_layer * self.n_embd**2  # attention 4 d^2 + MLP 8 d^2 (n_inner = 4 d) per layer

    def params(self, vocab_size: int) -> int:
        """All parameters: non-embedding, token embeddings (tied with the output layer) and positions."""
        return self.non_embedding_params + (vocab_size + self.context) * self.n_embd

    def flops_per_token(self, vocab_size: int) -> float:
        """Training FLOPs per token: 6 per matmul weight (incl. the output layer) plus attention."""
        matmul = self.non_embedding_params + vocab_size * self.n_embd
        return 6.0 * matmul + 6.0 * self.n_layer * self.context * self.n_embd

    @property
    def name(self) -> str:
        return f"gpt2-L{self.n_layer}-D{self.n_embd}"


# Shapes from tiny to GPT-2 XL; learning rates follow GPT-2/GPT-3 practice (smaller models take larger).
LADDER: tuple[ModelShape, ...] = (
    ModelShape(2, 64, 2, 128, 3e-3),
    ModelShape(3, 96, 3, 128, 2.5e-3),
    ModelShape(3, 128, 4, 128, 2e-3),
    ModelShape(4, 192, 4, 256, 1.5e-3),
    ModelShape(4, 256, 4, 256, 1.2e-3),
    ModelShape(6, 384, 6, 256, 1e-3),
    ModelShape(8, 512, 8, 512, 8e-4),
    ModelShape(12, 768, 12, 1024, 6e-4),
    ModelShape(24, 1024, 16, 1024, 3e-4),
    ModelShape(36, 1280, 20, 1024, 2.5e-4),
    ModelShape(48, 1600, 25, 1024, 2e-4),
)


@dataclass(frozen=True)
class Budget:
    """Compute for training: wall seconds on a device of ``flops`` effective FLOP/s."""

    device: str  # "cpu" | "gpu"
    seconds: float
    flops: float

    def __post_init__(self) -> None:
        if self.device not in ("cpu", "gpu"):
            raise ConfigError(f"budget device must be cpu or gpu, got {self.device!r}")
        if not self.seconds > 0:
            raise ConfigError(f"the compute budget must be positive, got {self.seconds} s")
        if not self.flops > 0:
            raise ConfigError(f"the throughput must be positive, got {self.flops} FLOP/s")


@dataclass(frozen=True)
class Plan:
    """Everything ``init`` decides, and the numbers behind it (printed and written into params.yaml)."""

    corpus_bytes: int
    corpus_files: int
    vocab_size: int
    bytes_per_token: float
    corpus_tokens: int
    train_tokens: int  # tokens of the train split
    usable_tokens: int  # train tokens x epochs
    model: ModelShape
    model_params: int
    non_embedding_params: int
    chinchilla_tokens: int
    tokens_to_train: int
    limited_by: str  # "data" | "compute"
    epochs: float
    batch_size: int
    accumulate_grad_batches: int
    max_length: int
    max_steps: int
    warmup_steps: int
    learning_rate: float
    flops: float
    expected_seconds: float
    budget: Budget

    def to_dict(self) -> dict:
        out = asdict(self)
        out["model"] = {**asdict(self.model), "name": self.model.name}
        return out


def default_cpu_flops(cores: int | None = None) -> float:
    """Effective training FLOP/s of this machine's CPU: 14 GFLOP/s per core (see module doc)."""
    if not cores:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return CPU_GFLOPS_PER_CORE * 1e9 * max(1, int(cores or 1))


def _round_pow2(x: float) -> int:
    return 1 << max(0, round(math.log2(max(x, 1.0))))


def _floor_pow2(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def vocab_size_for(corpus_bytes: int) -> int:
    """Step 1 of the rule: ``3.3 * sqrt(bytes)`` as a power of two in [512, 32768]."""
    return min(MAX_VOCAB, max(MIN_VOCAB, _round_pow2(VOCAB_PER_SQRT_BYTE * math.sqrt(max(corpus_bytes, 1)))))


def bytes_per_token(vocab_size: int) -> float:
    """Step 2: estimated bytes per BPE token of code at this vocabulary size."""
    return min(5.0, max(2.0, 3.9 + 0.35 * math.log2(vocab_size / 8192)))


def plan_run(
    corpus_bytes: int,
    budget: Budget,
    *,
    corpus_files: int = 0,
    train_fraction: float = 0.92,
    epochs: float = DEFAULT_EPOCHS,
    tokens_per_param: float = TOKENS_PER_PARAM,
    corpus_tokens: int | None = None,
    vocab_size: int | None = None,
) -> Plan:
    """Apply the rule of the module doc. ``corpus_tokens``/``vocab_size`` override the estimates."""
    if corpus_bytes <= 0:
        raise ConfigError("the corpus is empty: no files matched; check --path/--include/--exclude")
    if not 0 < train_fraction <= 1:
        raise ConfigError(f"train fraction must be in (0, 1], got {train_fraction}")
    if epochs <= 0 or tokens_per_param <= 0:
        raise ConfigError("--epochs and --tokens_per_param must be positive")
    vocab = vocab_size or vocab_size_for(corpus_bytes)
    bpt = bytes_per_token(vocab)
    tokens = int(corpus_tokens if corpus_tokens is not None else corpus_bytes / bpt)
    train_tokens = max(1, int(tokens * train_fraction))
    usable = max(1, int(train_tokens * epochs))
    budget_flops = budget.seconds * budget.flops
    model = _largest_shape(usable, budget_flops, tokens_per_param, vocab)
    per_token = model.flops_per_token(vocab)
    affordable = int(budget_flops / per_token)
    to_train = max(1, min(usable, affordable))
    limited_by = "data" if usable <= affordable else "compute"
    context = model.context
    batch_size, accumulate = _batching(to_train, context, budget.device)
    step_tokens = batch_size * accumulate * context
    max_steps = max(1, math.ceil(to_train / step_tokens))
    flops = float(max_steps * step_tokens * per_token)
    return Plan(
        corpus_bytes=corpus_bytes,
        corpus_files=corpus_files,
        vocab_size=vocab,
        bytes_per_token=round(bpt, 3) if corpus_tokens is None else round(corpus_bytes / max(tokens, 1), 3),
        corpus_tokens=tokens,
        train_tokens=train_tokens,
        usable_tokens=usable,
        model=model,
        model_params=model.params(vocab),
        non_embedding_params=model.non_embedding_params,
        chinchilla_tokens=int(tokens_per_param * model.non_embedding_params),
        tokens_to_train=max_steps * step_tokens,
        limited_by=limited_by,
        epochs=epochs,
        batch_size=batch_size,
        accumulate_grad_batches=accumulate,
        max_length=context,
        max_steps=max_steps,
        warmup_steps=max(1, round(0.08 * max_steps)),
        learning_rate=model.learning_rate,
        flops=flops,
        expected_seconds=flops / budget.flops,
        budget=budget,
    )


def _largest_shape(usable: int, budget_flops: float, tokens_per_param: float, vocab: int) -> ModelShape:
    """The largest ladder shape whose compute-optimal token count the data holds and the budget pays."""

    def fits(shape: ModelShape) -> bool:
        wanted = tokens_per_param * shape.non_embedding_params
        return wanted <= usable and wanted * shape.flops_per_token(vocab) <= budget_flops

    model = LADDER[0]
    for shape in LADDER:
        if fits(shape):
            model = shape
    return model


def _batching(to_train: int, context: int, device: str) -> tuple[int, int]:
    """``(batch size, gradient accumulation)``: about ``TARGET_STEPS`` steps, within the device's limits."""
    per_step = min(MAX_TOKENS_PER_STEP[device], _floor_pow2(to_train / TARGET_STEPS))
    sequences = max(1, per_step // context)
    batch_size = min(MAX_BATCH[device], sequences)
    return batch_size, max(1, sequences // batch_size)


def human_count(n: float) -> str:
    """``1.2B``, ``350.0M``, ``12.0k``: parameter and token counts in plans."""
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{unit}"
    return f"{n:.0f}"


def human_duration(seconds: float) -> str:
    """``<1 s``, ``45 s``, ``12.5 min``, ``3.2 h``: a plan's expected run time."""
    if seconds < 1:
        return "<1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def format_plan(plan: Plan) -> str:
    """The plan as the few lines ``init`` prints."""
    m, b = plan.model, plan.budget
    device = "CPU" if b.device == "cpu" else "GPU"
    lines = [
        f"corpus:      {plan.corpus_files} files, {plan.corpus_bytes / 1e6:.2f} MB "
        f"-> ~{human_count(plan.corpus_tokens)} tokens at {plan.bytes_per_token} bytes/token "
        f"({human_count(plan.train_tokens)} in train)",
        f"vocabulary:  {plan.vocab_size} (3.3 x sqrt(bytes), power of two in [512, 32768])",
        f"model:       GPT-2 {m.n_layer} layers x {m.n_embd} wide, {m.n_head} heads, context {m.context}: "
        f"{human_count(plan.model_params)} parameters ({human_count(plan.non_embedding_params)} non-embedding; "
        f"Chinchilla 20 x = {human_count(plan.chinchilla_tokens)} tokens)",
        f"training:    {human_count(plan.tokens_to_train)} tokens = {plan.max_steps} steps x {plan.batch_size} "
        f"x {plan.max_length} tokens{f' x {plan.accumulate_grad_batches} accumulated' if plan.accumulate_grad_batches > 1 else ''} ({plan.tokens_to_train / max(plan.train_tokens, 1):.1f} epochs; "
        f"limited by {f'the corpus (at most {plan.epochs:g} epochs)' if plan.limited_by == 'data' else 'the budget'}), "
        f"lr {plan.learning_rate:g}, warmup {plan.warmup_steps}",
        f"compute:     {plan.flops:.2e} FLOPs at {b.flops / 1e9:.0f} GFLOP/s ({device}) "
        f"-> expected train time ~{human_duration(plan.expected_seconds)} (budget {human_duration(b.seconds)})",
    ]
    return "\n".join(lines)
