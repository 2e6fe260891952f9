"""End-to-end training throughput: ``python -m gitnetic train`` vs a minimal plain-PyTorch loop, same shards.

What is compared (the job gitnetic actually does, not pre-collated random batches):

* **gitnetic**: the real ``train`` command path, in-process — ``gitnetic.cli.train.parse`` on
  ``--config params.yaml:train`` (the real ``TransformerDataModule`` reading the mmap shards, the real
  ``TransformerModule`` loss, per-step reseeding, DVCLive logging every ``log_every_n_steps`` into a
  temporary folder, Lightning), with validation, checkpoints and the progress bar off. The only addition
  is one timing callback.
* **plain**: a nanoGPT-style loop: the same shard ``.bin`` files memory-mapped and concatenated, the
  same packed blocks in the same order (``packed_batches`` with the same seed), the same model built from
  the same config and seed (identical initial weights), the same AdamW groups, betas, eps, weight decay
  and warmup + decay schedule, causal-LM loss, no attention mask, no logging.

Both are timed over the same steady-state window (the steps after ``--warmup``), interleaved in rotating
order ``--repeats`` times; the report is the median tokens/s (wall and process-CPU time) and the ratio
gitnetic/plain. Both also print their last loss: with dropout off they train on identical batches from
identical weights, so the losses agree (a check that the comparison is like for like).

    python bench/train_e2e.py                                   # default model and a 6 x 384 one
    python bench/train_e2e.py --models default --steps 40 --repeats 5 --profile /tmp/prof

Needs the default pipeline's shards (``bash scripts/pipeline.sh preprocess``). A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

MODELS = {
    # name -> config_params overrides of the pipeline's model config (None = as configured)
    "default": None,
    "6x384": {"n_embd": 384, "n_layer": 6, "n_head": 6, "n_inner": 1536},
}


class Clock:
    """Wall and process-CPU seconds of the timed window (CPU time is less disturbed by neighbours)."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0
        self.last_loss = float("nan")

    def start(self) -> None:
        self.wall, self.cpu = -time.perf_counter(), -time.process_time()

    def stop(self) -> None:
        self.wall += time.perf_counter()
        self.cpu += time.process_time()


def model_config_file(base: str, overrides: dict[str, Any] | None, out_dir: Path) -> str:
    if not overrides:
        return base
    data = yaml.safe_load(Path(base).read_text(encoding="utf-8"))
    data["model"]["config_params"].update(overrides)
    path = out_dir / "model.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return str(path)


# ---------------------------------------------------------------------------- gitnetic (the real CLI path)


def run_gitnetic(argv: list[str], warmup: int, steps: int, profile: Path | None) -> Clock:
    import lightning as L

    from gitnetic.cli.train import parse
    from gitnetic.training.run import TrainParams, train_task

    clock = Clock()
    profiler = cProfile.Profile() if profile else None

    class Timer(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if batch_idx == warmup - 1:
                clock.start()
                if profiler:
                    profiler.enable()
            elif batch_idx == warmup + steps - 1:
                if profiler:
                    profiler.disable()
                clock.stop()
                clock.last_loss = float(outputs["loss"])

    # exactly what gitnetic.cli.train.main does, plus the timer callback
    task_cls, params = parse(argv)
    train_task(task_cls, TrainParams.from_parsed(params), callbacks=[Timer()])
    if profiler:
        profiler.dump_stats(str(profile))
    return clock


# ---------------------------------------------------------------------------- plain PyTorch loop


def run_plain(train: dict[str, Any], config_path: str, warmup: int, steps: int) -> Clock:
    import torch
    import torch.nn.functional as F

    from gitnetic.data.loading.batching import packed_batches
    from gitnetic.data.shards.indexed import IndexedDataset
    from gitnetic.models.build import build_model_and_tokenizer
    from gitnetic.modules.schedule import polynomial_decay_scheduler
    from gitnetic.modules.transformer_module import split_weight_decay_params

    seed, block, batch_size = int(train["seed"]), int(train["max_length"]), int(train["batch_size"])
    total = warmup + steps
    # nanoGPT: the token stream is the .bin files memory-mapped back to back
    dtype = IndexedDataset(train["train_data_prefix"]).dtype
    bins = sorted(glob.glob(train["train_data_prefix"] + "-*-of-*.bin")) or [
        train["train_data_prefix"] + ".bin"
    ]
    stream = np.concatenate([np.memmap(b, dtype=dtype, mode="r") for b in bins])
    num_blocks = -(-len(stream) // block)
    plan = packed_batches(num_blocks, batch_size, seed, epoch=0, shuffle=True)

    torch.manual_seed(seed)  # what the trainer's seed_everything does before the task builds the model
    model = build_model_and_tokenizer(config_path, train["tokenizer_path"], block).model
    model.train()
    lr = float(train["learning_rate"])
    opt = torch.optim.AdamW(
        split_weight_decay_params(model, float(train.get("weight_decay", 0.01))),
        lr=lr,
        betas=tuple(train.get("betas", (0.9, 0.98))),
        eps=float(train.get("eps", 1e-6)),
    )
    sched = polynomial_decay_scheduler(
        opt, lr=lr, warmup_steps=int(train["warmup_steps"]), max_steps=total, power=float(train["power"])
    )
    clock = Clock()
    for step in range(total):
        if step == warmup:
            clock.start()
        rows = [stream[i * block : (i + 1) * block] for i in plan[step % len(plan)]]
        x = torch.from_numpy(np.stack(rows).astype(np.int64))
        logits = model(input_ids=x).logits
        targets = F.pad(x[:, 1:], (0, 1), value=-100)  # shift the targets, not the (big) logits
        loss = F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-100, reduction="sum"
        ) / (x.size(0) * (x.size(1) - 1))
        loss.backward()
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
    clock.stop()
    clock.last_loss = float(loss)
    return clock


# ---------------------------------------------------------------------------- driver


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", help="params file with the train section")
    parser.add_argument("--models", default="default,6x384", help=f"comma list of {', '.join(MODELS)}")
    parser.add_argument("--steps", type=int, default=30, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch's default)")
    parser.add_argument("--only", choices=["gitnetic", "plain"], help="run one contender only")
    parser.add_argument("--profile", type=Path, help="write cProfile stats of gitnetic's timed window here")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument(
        "train_args", nargs="*", help="extra flags for gitnetic train (after --), e.g. -- --precision 32"
    )
    args = parser.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    train = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))["train"]
    if not glob.glob(train["train_data_prefix"] + "*.bin"):
        parser.error(f"no shards at {train['train_data_prefix']}: run `bash scripts/pipeline.sh preprocess`")
    total = args.warmup + args.steps
    tokens = args.steps * int(train["batch_size"]) * int(train["max_length"])
    summary: dict[str, Any] = {"config": vars(args) | {"threads": torch.get_num_threads()}, "models": {}}
    names = [n for n in ("plain", "gitnetic") if args.only in (None, n)]
    with tempfile.TemporaryDirectory() as tmp:
        for model_name in args.models.split(","):
            out = Path(tmp) / model_name
            out.mkdir()
            config_path = model_config_file(train["config_path"], MODELS[model_name], out)
            cli = [
                "--config", f"{args.params}:train", "--config_path", config_path,
                "--max_steps", str(total), "--val_data_prefix", "", "--save_dir", "",
                "--progress_bar_refresh_rate", "0", "--dvclive_dir", str(out / "dvclive"),
                "--enable_model_summary", "false", *args.train_args,
            ]  # fmt: skip
            runners = {
                "plain": lambda c=config_path: run_plain(train, c, args.warmup, args.steps),
                "gitnetic": lambda a=cli: run_gitnetic(a, args.warmup, args.steps, args.profile),
            }
            print(
                f"model {model_name}: batch {train['batch_size']} x {train['max_length']} tokens, "
                f"{args.warmup}+{args.steps} steps, {torch.get_num_threads()} threads, torch {torch.__version__}",
                flush=True,
            )
            results: dict[str, dict[str, list[float]]] = {n: {"wall": [], "cpu": []} for n in names}
            for rep in range(args.repeats):
                order = names[rep % len(names) :] + names[: rep % len(names)]
                for name in order:
                    clock = runners[name]()
                    results[name]["wall"].append(tokens / clock.wall)
                    results[name]["cpu"].append(tokens / clock.cpu)
                    print(
                        f"  repeat {rep + 1}: {name:8s} {tokens / clock.wall:8.0f} tokens/s "
                        f"({1000 * clock.wall / args.steps:6.1f} ms/step), {tokens / clock.cpu:8.0f} "
                        f"tokens/CPU-s; last loss {clock.last_loss:.6f}",
                        flush=True,
                    )
            entry: dict[str, Any] = {"per_run": results}
            for kind in ("wall", "cpu"):
                median = {n: statistics.median(results[n][kind]) for n in names}
                entry[kind] = median
                line = ", ".join(f"{n} {median[n]:.0f}" for n in names)
                if len(names) == 2:
                    entry[f"{kind}_ratio"] = median["gitnetic"] / median["plain"]
                    line += f"; gitnetic/plain = {median['gitnetic'] / median['plain']:.3f}"
                print(f"  [{kind}] median tokens/s: {line}", flush=True)
            summary["models"][model_name] = entry
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
