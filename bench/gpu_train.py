"""GPU training benchmark: GPT-2-small (124M) and a Llama of similar size, gitnetic vs a plain PyTorch loop.

One command on a CUDA machine::

    python bench/gpu_train.py                      # bf16-mixed, with and without torch.compile, appends to bench/RESULTS.md

For each model it runs, in one process and in this order, a plain PyTorch loop and gitnetic's real
training path (``TransformerTrainer`` + ``TransformerModule`` + ``TransformerDataModule`` reading MMIDIDX
shards), each without and with ``torch.compile``, on the same data (synthetic token ids written as real
shards), the same initial weights, the same batch and the same optimizer (fused AdamW on CUDA). It
reports steady-state tokens/s and MFU (FLOPs per token from the model shape, ``6 N + 12 L d T``, against
the GPU's dense peak for the precision from ``gitnetic.training.throughput.PEAK_TFLOPS``), peak memory,
and the compile (+ first-step) time separately, and appends a table to ``bench/RESULTS.md``.

Fast settings used by both contenders: bf16 autocast, SDPA attention (``attn_implementation="sdpa"``),
TF32 matmuls (Ampere+), fused AdamW, pinned host memory with ``non_blocking`` copies. Both models use
``gelu_pytorch_tanh`` (GPT-2's tanh GELU as one fused kernel) and no dropout, as LM pre-training
benchmarks usually do.

LoRA case (issue 31): ``--lora`` trains a 1B-class Llama (Llama-3.2-1B's shape: 16 layers x 2048, 32
heads, 8 KV heads, SwiGLU 8192, vocabulary 128,256, tied embeddings) through gitnetic's training path twice,
a full fine-tune and LoRA adapters (``--lora_r``, default 16, on q/k/v/o: ``gitnetic.models.lora``), and
reports tokens/s, MFU and peak memory of each and LoRA / full. MFU counts what each run computes: a frozen
weight gets no weight gradient, so 4 FLOPs a token instead of 6 (``flops_per_token``)::

    python bench/gpu_train.py --lora               # bf16-mixed, batch 4 x 2048, appends to bench/RESULTS.md

CPU smoke tests of the whole script (no timings worth recording)::

    python bench/gpu_train.py --device cpu --tiny
    python bench/gpu_train.py --device cpu --tiny --lora

A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import platform
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitnetic.training.throughput import compute_kind, flops_per_token, peak_flops  # noqa: E402

LR, WARMUP_LR_STEPS = 6e-4, 10
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def model_configs(tiny: bool) -> dict[str, Any]:
    import transformers

    vocab = 512 if tiny else None
    common = {"attn_implementation": "sdpa"}
    gpt2 = transformers.GPT2Config(
        vocab_size=vocab or 50257,
        n_positions=64 if tiny else 1024,
        n_embd=64 if tiny else 768,
        n_layer=2 if tiny else 12,
        n_head=2 if tiny else 12,
        activation_function="gelu_pytorch_tanh",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=0,
        eos_token_id=2,
        **common,
    )
    llama = transformers.LlamaConfig(
        vocab_size=vocab or 32000,
        hidden_size=64 if tiny else 768,
        intermediate_size=128 if tiny else 2048,
        num_hidden_layers=2 if tiny else 12,
        num_attention_heads=2 if tiny else 12,
        num_key_value_heads=2 if tiny else 12,
        max_position_embeddings=64 if tiny else 1024,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        **common,
    )
    return {
        "gpt2-124m" if not tiny else "gpt2-tiny": (transformers.GPT2LMHeadModel, gpt2),
        "llama-124m" if not tiny else "llama-tiny": (transformers.LlamaForCausalLM, llama),
    }


def build_tokenizer(out: Path) -> Any:
    """A real (small) BPE tokenizer: the data module and module need its pad and special ids only."""
    from gitnetic.data.tokenizer.params import TokenizerParams
    from gitnetic.data.tokenizer.train import train_tokenizer

    files = sorted((Path(sysconfig.get_paths()["stdlib"]) / "json").glob("*.py"))
    return train_tokenizer(
        (p.read_text(encoding="utf-8") for p in files), out, TokenizerParams(vocab_size=512)
    )


def write_shards(prefix: Path, vocab: int, tokens: int, seed: int = 0) -> str:
    """Synthetic documents of random ids, written as real MMIDIDX shards (what training reads)."""
    from gitnetic.data.shards.indexed import IndexedDatasetBuilder, best_dtype

    rng = np.random.default_rng(seed)
    builder = IndexedDatasetBuilder(str(prefix), best_dtype(vocab))
    written = 0
    while written < tokens:
        n = int(rng.integers(200, 4000))
        builder.add_document(rng.integers(5, vocab, n))
        written += n
    builder.finalize()
    return str(prefix)


class Clock:
    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.warm = self.start = self.stop = 0.0
        self.peak_mem = 0.0


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_memory(device: str) -> None:
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def lora_configs(tiny: bool) -> dict[str, Any]:
    """The LoRA case's model: Llama-3.2-1B's shape (``--tiny``: a 2-layer Llama for CPU smoke runs)."""
    import transformers

    llama = transformers.LlamaConfig(
        vocab_size=512 if tiny else 128256,
        hidden_size=64 if tiny else 2048,
        intermediate_size=128 if tiny else 8192,
        num_hidden_layers=2 if tiny else 16,
        num_attention_heads=4 if tiny else 32,
        num_key_value_heads=2 if tiny else 8,
        max_position_embeddings=64 if tiny else 2048,
        rope_theta=500000.0,
        tie_word_embeddings=True,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
        attn_implementation="sdpa",
    )
    return {"llama-tiny" if tiny else "llama-1b": (transformers.LlamaForCausalLM, llama)}


def with_lora(model: Any, r: int, folder: Path) -> tuple[Any, dict[str, Any]]:
    """``model`` with gitnetic's LoRA adapters (the family's default targets), as ``train --lora_r`` builds
    it; ``folder`` stands in for --init_from (its config.json is what the record digests)."""
    from gitnetic.models.lora import apply_lora
    from gitnetic.models.params import LoraParams

    model.config.save_pretrained(folder)
    return apply_lora(model, LoraParams(lora_r=r, lora_alpha=2.0 * r), str(folder))


# ---------------------------------------------------------------------------- contenders


def run_plain(args, model, shards: str, compile_model: bool) -> Clock:
    from gitnetic.data.loading.batching import PackedBlocks, packed_batches
    from gitnetic.data.shards.indexed import IndexedDataset
    from gitnetic.modules.schedule import polynomial_decay_scheduler
    from gitnetic.modules.transformer_module import split_weight_decay_params

    device, total = args.device, args.warmup + args.steps
    blocks = PackedBlocks(IndexedDataset(shards), args.seq)
    plan = packed_batches(len(blocks), args.batch, seed=0)
    model = model.to(device).train()
    opt = torch.optim.AdamW(
        split_weight_decay_params(model, 0.1), lr=LR, betas=(0.9, 0.95), eps=1e-8, fused=device == "cuda"
    )
    sched = polynomial_decay_scheduler(opt, lr=LR, warmup_steps=WARMUP_LR_STEPS, max_steps=total)
    step_fn = torch.compile(model) if compile_model else model
    autocast = (
        torch.autocast(device, dtype=torch.bfloat16)
        if args.precision == "bf16-mixed"
        else contextlib.nullcontext()
    )
    clock = Clock()
    for step in range(total):
        if step == args.warmup:
            sync(device)
            clock.start = time.perf_counter()
        x = torch.from_numpy(np.stack([blocks[i] for i in plan[step % len(plan)]]))
        if device == "cuda":
            x = x.pin_memory().to(device, non_blocking=True)
        with autocast:
            logits = step_fn(input_ids=x).logits
        targets = F.pad(x[:, 1:], (0, 1), value=-100)
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.view(-1), ignore_index=-100)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    sync(device)
    clock.stop = time.perf_counter()
    clock.peak_mem = peak_memory_gib(device)
    return clock


def run_gitnetic(args, model, shards: str, compile_model: bool, tokenizer, lora: dict | None = None) -> Clock:
    import lightning as L

    from gitnetic.modules.transformer_datamodule import TransformerDataModule
    from gitnetic.modules.transformer_module import TransformerModule
    from gitnetic.training.trainer import TransformerTrainer

    device, total = args.device, args.warmup + args.steps
    clock = Clock()

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == args.warmup - 1:
                sync(device)
                clock.start = time.perf_counter()
            elif batch_idx == total - 1:
                sync(device)
                clock.stop = time.perf_counter()

    trainer = TransformerTrainer(
        TransformerTrainer.Params(
            max_steps=total,
            gpus=1 if device == "cuda" else 0,
            precision=args.precision,
            save_dir="",
            dvclive_dir="",
            progress_bar_refresh_rate=0,
            log_every_n_steps=50,
            compile=compile_model,
            seed=0,
        ),
        callbacks=[Timer()],
        num_sanity_val_steps=0,
    )
    module = TransformerModule(
        model=model,
        tokenizer=tokenizer,
        params=TransformerModule.Params(
            learning_rate=LR, warmup_steps=WARMUP_LR_STEPS, betas=[0.9, 0.95], eps=1e-8, weight_decay=0.1,
            objective="clm",
        ),
        lora=lora,
    )  # fmt: skip
    datamodule = TransformerDataModule(
        tokenizer=tokenizer,
        params=TransformerDataModule.Params(
            train_data_prefix=shards, batch_size=args.batch, max_length=args.seq, packing=True, seed=0
        ),
    )
    trainer.fit(module, datamodule)
    clock.peak_mem = peak_memory_gib(device)
    return clock


# ---------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    parser.add_argument("--tiny", action="store_true", help="tiny models and batches (CPU smoke test)")
    parser.add_argument("--models", help="comma list (default: both)")
    parser.add_argument("--batch", type=int, help="sequences per step (default 16; --tiny 4)")
    parser.add_argument("--seq", type=int, help="tokens per sequence (default 1024; --tiny 64)")
    parser.add_argument("--steps", type=int, help="timed steps (default 50; --tiny 4)")
    parser.add_argument(
        "--warmup", type=int, help="untimed steps first, incl. compilation (default 10; --tiny 2)"
    )
    parser.add_argument("--precision", help="bf16-mixed (default on CUDA) or 32-true (default on CPU)")
    parser.add_argument(
        "--compile", choices=["both", "off", "on"], help="torch.compile variants (default both; --tiny off)"
    )
    parser.add_argument("--record", type=Path, help=f"append the table here (default on CUDA: {RESULTS})")
    parser.add_argument(
        "--lora", action="store_true", help="the LoRA case: a 1B-class Llama, full fine-tune vs LoRA adapters"
    )
    parser.add_argument("--lora_r", type=int, default=16, help="LoRA rank of the --lora case (default 16)")
    args = parser.parse_args(argv)
    tiny = args.tiny
    args.batch = args.batch or (4 if tiny or args.lora else 16)
    args.seq = args.seq or (64 if tiny else 2048 if args.lora else 1024)
    args.steps = args.steps or (4 if tiny else 30 if args.lora else 50)
    args.warmup = args.warmup or (2 if tiny else 10)
    args.precision = args.precision or ("bf16-mixed" if args.device == "cuda" else "32-true")
    args.compile = args.compile or ("off" if tiny or args.lora else "both")
    if args.record is None and args.device == "cuda" and not tiny:
        args.record = RESULTS
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run on a GPU machine, or smoke-test with --device cpu --tiny")

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    import transformers

    transformers.logging.set_verbosity_error()
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.set_float32_matmul_precision("high")
    device = torch.device(args.device)
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor() or "cpu"
    peak = peak_flops(device_name, compute_kind(args.precision, device)) if args.device == "cuda" else None
    variants = {"both": [False, True], "off": [False], "on": [True]}[args.compile]
    configs = lora_configs(tiny) if args.lora else model_configs(tiny)
    contenders = ("full", "lora") if args.lora else ("plain", "gitnetic")
    chosen = args.models.split(",") if args.models else list(configs)
    tokens_per_step = args.batch * args.seq
    header = (
        f"{device_name}, torch {torch.__version__}, transformers {transformers.__version__}, {args.precision}, "
        f"batch {args.batch} x {args.seq} = {tokens_per_step:,} tokens/step, {args.warmup}+{args.steps} steps"
        + (f", peak {peak / 1e12:.0f} TFLOP/s" if peak else ", no peak FLOPs known (no MFU)")
    )
    print(header, flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "tok")
        for name in chosen:
            cls, config = configs[name]
            total_tokens = (args.warmup + args.steps + 2) * tokens_per_step
            shards = write_shards(Path(tmp) / name, config.vocab_size, total_tokens)
            torch.manual_seed(0)
            base = cls(config)
            n_params = sum(p.numel() for p in base.parameters())
            base_state = {k: v.clone() for k, v in base.state_dict().items()}
            del base
            for compiled in variants:
                for contender in contenders:
                    model = cls(config)
                    model.load_state_dict(base_state)
                    lora = None
                    if contender == "lora":
                        model, lora = with_lora(model, args.lora_r, Path(tmp) / f"{name}-base")
                    fpt = flops_per_token(model, args.seq)  # frozen weights: 4 FLOPs a token, not 6
                    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
                    reset_memory(args.device)
                    t0 = time.perf_counter()
                    if contender == "plain":
                        clock = run_plain(args, model, shards, compiled)
                    else:
                        clock = run_gitnetic(args, model, shards, compiled, tokenizer, lora)
                    timed = clock.stop - clock.start
                    tps = args.steps * tokens_per_step / timed
                    warm = clock.start - t0  # set-up, first steps and compilation
                    row = {
                        "model": name,
                        "params_m": n_params / 1e6,
                        "trainable_m": trainable / 1e6,
                        "contender": contender,
                        "compile": compiled,
                        "tokens_per_s": tps,
                        "step_ms": 1000 * timed / args.steps,
                        "mfu": tps * fpt / peak if peak else None,
                        "warmup_s": warm,
                        "peak_mem_gib": clock.peak_mem,
                    }
                    rows.append(row)
                    print(format_row(row), flush=True)
                    del model
    table = markdown(rows, baseline=contenders[0])
    print(table)
    if args.record:
        command = "python bench/gpu_train.py " + " ".join(argv if argv is not None else sys.argv[1:])
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
        with args.record.open("a", encoding="utf-8") as fh:
            fh.write(f"\n### gpu_train, {stamp}\n\nCommand: `{command.strip()}`\n\n{header}\n\n{table}\n")
        print(f"appended to {args.record}")
    return 0


def format_row(r: dict[str, Any]) -> str:
    mfu = f"MFU {100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "MFU   n/a"
    return (
        f"  {r['model']:11s} {r['contender']:8s} compile={'on ' if r['compile'] else 'off'} "
        f"{r['tokens_per_s']:10,.0f} tokens/s {r['step_ms']:8.1f} ms/step {mfu}  "
        f"warm-up/compile {r['warmup_s']:6.1f} s  peak mem {r['peak_mem_gib']:.1f} GiB"
    )


def markdown(rows: list[dict[str, Any]], baseline: str = "plain") -> str:
    """The table; the ratio column compares each row's tokens/s (and peak memory) with ``baseline``'s
    (the plain loop, or in the LoRA case the full fine-tune) of the same model and compile setting."""
    other = "gitnetic / plain" if baseline == "plain" else f"tokens/s vs {baseline} | peak mem vs {baseline}"
    lines = [
        f"| model | params | trains | loop | compile | tokens/s | ms/step | MFU | {other} | warm-up + compile s | peak GiB |",
        "|---|---:|---:|---|---|---:|---:|---:|---:|"
        + ("---:|" if baseline != "plain" else "")
        + "---:|---:|",
    ]
    base = {(r["model"], r["compile"]): r for r in rows if r["contender"] == baseline}
    for r in rows:
        ref = base.get((r["model"], r["compile"]))
        first = r["contender"] == baseline or ref is None
        ratio = "" if first else f"{r['tokens_per_s'] / ref['tokens_per_s']:.3f}"
        if baseline != "plain":
            mem = (
                ""
                if first or not ref["peak_mem_gib"] > 0
                else f"{r['peak_mem_gib'] / ref['peak_mem_gib']:.3f}"
            )
            ratio = f"{ratio} | {mem}"
        mfu = "" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
        lines.append(
            f"| {r['model']} | {r['params_m']:.3g}M | {r['trainable_m']:.3g}M | {r['contender']} | "
            f"{'on' if r['compile'] else 'off'} | {r['tokens_per_s']:,.0f} | {r['step_ms']:.1f} | {mfu} | {ratio} | "
            f"{r['warmup_s']:.1f} | {r['peak_mem_gib']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
