"""Training-loop overhead: gitnetic (TransformerTrainer + TransformerModule) vs a plain PyTorch loop vs HF Trainer.

All three train the same GPT-2 from the same initial weights on the same pre-collated batches with the
same AdamW parameter groups and warmup + polynomial-decay schedule, on the same number of threads,
for the same number of steps. We time the steady state only (after ``--warmup`` steps) and run the
three in rotating order ``--repeats`` times, so a noisy neighbour hurts all of them alike; the report is
the median tokens/s (per wall second and per process-CPU second) of each and the ratios gitnetic/plain (goal >= 0.95) and gitnetic/HF (goal >= 1.0).

    python bench/train_overhead.py                      # CPU defaults: n_embd 256, 4 layers, seq 256, batch 8
    python bench/train_overhead.py --device cuda --precision bf16-mixed --n_embd 768 --n_layer 12 --batch 16

This is a benchmark, not a test: it asserts nothing and takes minutes.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import os
import statistics
import sys
import sysconfig
import tempfile
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gitnetic.modules.schedule import polynomial_decay_scheduler  # noqa: E402
from gitnetic.modules.transformer_module import TransformerModule, split_weight_decay_params  # noqa: E402

LR, WARMUP_LR_STEPS = 5e-4, 10


def build_tokenizer(out: Path):
    from gitnetic.data.tokenizer.params import TokenizerParams
    from gitnetic.data.tokenizer.train import train_tokenizer

    files = sorted((Path(sysconfig.get_paths()["stdlib"]) / "json").glob("*.py"))
    return train_tokenizer(
        (p.read_text(encoding="utf-8") for p in files), out, TokenizerParams(vocab_size=4096)
    )


def build_model(args, vocab_size: int):
    import transformers

    config = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_embd=args.n_embd,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_positions=args.seq,
        bos_token_id=0,
        eos_token_id=2,
    )
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(config)


def make_batches(args, vocab_size: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(1)
    total = args.warmup + args.steps
    ids = torch.randint(5, vocab_size, (total, args.batch, args.seq), generator=g)
    return [{"input_ids": ids[i], "attention_mask": torch.ones_like(ids[i])} for i in range(total)]


def make_optimizer(model, total_steps: int):
    opt = torch.optim.AdamW(split_weight_decay_params(model, 0.01), lr=LR, betas=(0.9, 0.98), eps=1e-6)
    sched = polynomial_decay_scheduler(opt, lr=LR, warmup_steps=WARMUP_LR_STEPS, max_steps=total_steps)
    return opt, sched


def autocast(args):
    if args.precision == "bf16-mixed":
        return torch.autocast(args.device, dtype=torch.bfloat16)
    return torch.autocast(args.device, enabled=False)


# ---------------------------------------------------------------------------- the three contenders


class Clock:
    """Wall and process-CPU time of the timed window: CPU time is far less sensitive to noisy neighbours."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def start(self) -> None:
        self.wall, self.cpu = -time.perf_counter(), -time.process_time()

    def stop(self) -> None:
        self.wall += time.perf_counter()
        self.cpu += time.process_time()


def run_plain(args, model, batches) -> Clock:
    model = model.to(args.device).train()
    opt, sched = make_optimizer(model, len(batches))
    clock = Clock()
    for i, batch in enumerate(batches):
        if i == args.warmup:
            sync(args)
            clock.start()
        ids = batch["input_ids"].to(args.device, non_blocking=True)
        mask = batch["attention_mask"].to(args.device, non_blocking=True)
        with autocast(args):
            logits = model(input_ids=ids, attention_mask=mask).logits
        labels = ids.masked_fill(mask == 0, -100)[:, 1:]
        loss_sum = F.cross_entropy(
            logits[:, :-1].reshape(-1, logits.size(-1)).float(),
            labels.reshape(-1),
            ignore_index=-100,
            reduction="sum",
        )
        loss = loss_sum / (labels != -100).sum().clamp(min=1)
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    sync(args)
    clock.stop()
    return clock


def run_gitnetic(args, model, batches, tokenizer) -> Clock:
    import lightning as L

    from gitnetic.training.trainer import TransformerTrainer

    clock = Clock()

    class Timer(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if batch_idx == args.warmup:
                sync(args)
                clock.start()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == len(batches) - 1:
                sync(args)
                clock.stop()

    class Batches(L.LightningDataModule):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(
                batches, batch_size=None, shuffle=False, pin_memory=args.device == "cuda"
            )

    timer = Timer()
    params = TransformerTrainer.Params(
        max_steps=len(batches),
        gpus=1 if args.device == "cuda" else 0,
        precision=args.precision,
        save_dir="",  # no checkpoint writes inside the timed window
        dvclive_dir="",
        progress_bar_refresh_rate=0,
        log_every_n_steps=50,
        seed=0,
    )
    trainer = TransformerTrainer(
        params, callbacks=[timer], enable_model_summary=False, num_sanity_val_steps=0
    )
    module = TransformerModule(
        model=model,
        tokenizer=tokenizer,
        params=TransformerModule.Params(learning_rate=LR, warmup_steps=WARMUP_LR_STEPS, objective="clm"),
    )
    trainer.fit(module, Batches())
    return clock


def run_hf(args, model, batches) -> Clock:
    import transformers

    clock = Clock()

    class Timer(transformers.TrainerCallback):
        def on_step_begin(self, targs, state, control, **kwargs):
            if state.global_step == args.warmup:
                sync(args)
                clock.start()

        def on_step_end(self, targs, state, control, **kwargs):
            if state.global_step == len(batches):
                sync(args)
                clock.stop()

    class Rows(torch.utils.data.Dataset):
        """One row per example; HF's sequential sampler + collator rebuild our exact batches."""

        def __init__(self) -> None:
            self.ids = torch.cat([b["input_ids"] for b in batches])

        def __len__(self) -> int:
            return len(self.ids)

        def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
            ids = self.ids[i]
            return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids}

    timer = Timer()
    model = model.to(args.device)
    opt, sched = make_optimizer(model, len(batches))
    with tempfile.TemporaryDirectory() as out:
        targs = transformers.TrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch,
            max_steps=len(batches),
            max_grad_norm=0.0,  # no clipping, like the other two
            logging_strategy="no",
            save_strategy="no",
            report_to="none",
            disable_tqdm=True,
            use_cpu=args.device == "cpu",
            bf16=args.precision == "bf16-mixed",
            dataloader_num_workers=0,
            dataloader_pin_memory=args.device == "cuda",
            seed=0,
        )
        trainer = transformers.Trainer(
            model=model, args=targs, train_dataset=Rows(), optimizers=(opt, sched), callbacks=[timer]
        )
        trainer.train()
    return clock


def sync(args) -> None:
    if args.device == "cuda":
        torch.cuda.synchronize()


# ---------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n_embd", type=int, default=256)
    parser.add_argument("--n_layer", type=int, default=4)
    parser.add_argument("--n_head", type=int, default=4)
    parser.add_argument("--seq", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=30, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "transformers"):
        logging.getLogger(name).setLevel(logging.ERROR)
    import transformers

    transformers.logging.set_verbosity_error()

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer = build_tokenizer(Path(tmp) / "tok")
    vocab = len(tokenizer)
    batches = make_batches(args, vocab)
    base = build_model(args, vocab)
    n_params = sum(p.numel() for p in base.parameters())
    tokens = args.steps * args.batch * args.seq
    print(
        f"GPT-2 {n_params / 1e6:.2f}M params (n_embd {args.n_embd}, {args.n_layer} layers, vocab {vocab}), "
        f"batch {args.batch} x seq {args.seq}, {args.warmup}+{args.steps} steps, {torch.get_num_threads()} threads, "
        f"{args.device} {args.precision}, torch {torch.__version__}",
        flush=True,
    )
    runners = {
        "plain": lambda m: run_plain(args, m, batches),
        "gitnetic": lambda m: run_gitnetic(args, m, batches, tokenizer),
        "hf": lambda m: run_hf(args, m, batches),
    }
    names = list(runners)
    results: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
    for rep in range(args.repeats):
        order = names[rep % 3 :] + names[: rep % 3]  # rotate who goes first
        for name in order:
            clock = runners[name](copy.deepcopy(base))
            results[name]["wall"].append(tokens / clock.wall)
            results[name]["cpu"].append(tokens / clock.cpu)
            print(
                f"  repeat {rep + 1}: {name:8s} {tokens / clock.wall:9.0f} tokens/s wall ({clock.wall:.2f} s), "
                f"{tokens / clock.cpu:9.0f} tokens/CPU-s ({clock.cpu:.2f} CPU-s)",
                flush=True,
            )
    summary: dict[str, object] = {"per_run": results}
    for kind in ("wall", "cpu"):
        median = {n: statistics.median(results[n][kind]) for n in names}
        summary[kind] = {
            "tokens_per_s_median": median,
            "gitnetic_vs_plain": median["gitnetic"] / median["plain"],
            "gitnetic_vs_hf": median["gitnetic"] / median["hf"],
        }
        print(
            f"[{kind}] median tokens/s: plain {median['plain']:.0f}, gitnetic {median['gitnetic']:.0f}, "
            f"hf {median['hf']:.0f}; gitnetic/plain = {median['gitnetic'] / median['plain']:.3f}, "
            f"gitnetic/hf = {median['gitnetic'] / median['hf']:.3f}"
        )
    summary["config"] = vars(args) | {"vocab": vocab, "params": n_params, "threads": torch.get_num_threads()}
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
