"""LoRA vs full fine-tune on CPU: the same small pretrained model, the real ``train`` command, each run in
its own process.

What is compared: ``python -m gitnetic train --init_from BASE`` (a saved model folder: Llama 6 x 384 and
GPT-2 6 x 384 by default, a 4,096-token BPE trained here on the stdlib, tied embeddings) on the same
shards, the same batches and steps, once as a full fine-tune and once with ``--lora_r`` (the family's
default targets: the attention projections). Reported per run, median of ``--repeats`` interleaved runs:

* tokens/s: from the run's own summary line (``train: N steps, T tokens in S (X tokens/s ...)``: the
  training loop, start-up excluded);
* peak RSS: the child's ``VmHWM``, polled from /proc (``ru_maxrss`` would count this parent at fork time);
* the final checkpoint's size (LoRA: adapters + their Adam moments only);

and LoRA / full for each. Why LoRA is not much faster on a CPU: the forward pass and the input gradients
(4 of the 6 FLOPs a weight costs per token) remain; only weight gradients and the optimizer step go.
What it saves is memory: no gradients or Adam moments for the frozen weights.

    python bench/lora.py                         # both families, 20 steps of 4 x 256 tokens, 2 repeats
    python bench/lora.py --families llama --steps 20 --repeats 1

A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

REPO = Path(__file__).resolve().parents[1]
SUMMARY = re.compile(r"train: (\d+) steps, ([\d,]+) tokens in \S+ \(([\d,]+) tokens/s")


def build_base(family: str, folder: Path, tokenizer_dir: Path) -> int:
    """A randomly initialised model of ``family`` for the tokenizer, saved with its tokenizer; its size."""
    import torch
    import transformers

    from gitnetic.data.tokenizer.load import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    ids = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    if family == "llama":
        config = transformers.LlamaConfig(
            vocab_size=len(tokenizer), hidden_size=384, intermediate_size=1024, num_hidden_layers=6,
            num_attention_heads=6, num_key_value_heads=6, max_position_embeddings=1024,
            tie_word_embeddings=True, pad_token_id=tokenizer.pad_token_id, **ids,
        )  # fmt: skip
        cls = transformers.LlamaForCausalLM
    else:
        config = transformers.GPT2Config(
            vocab_size=len(tokenizer), n_embd=384, n_layer=6, n_head=6, n_inner=1536, n_positions=1024,
            resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, **ids,
        )  # fmt: skip
        cls = transformers.GPT2LMHeadModel
    torch.manual_seed(0)
    model = cls(config)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return sum(p.numel() for p in model.parameters())


def train(args: argparse.Namespace, base: Path, shards: str, save_dir: Path, lora_r: int) -> dict[str, Any]:
    """One ``train`` process: its tokens/s, peak RSS (MiB) and final checkpoint size (MiB)."""
    cmd = [
        sys.executable, "-m", "gitnetic", "train", "--task", "transformer-task", "--init_from", str(base),
        "--train_data_prefix", shards, "--batch_size", str(args.batch), "--max_length", str(args.seq),
        "--packing", "true", "--max_steps", str(args.steps), "--warmup_steps", "2", "--save_dir", str(save_dir),
        "--save_step_frequency", "0", "--progress_bar_refresh_rate", "0", "--dvclive_dir", "",
        "--log_every_n_steps", str(args.steps), "--num_threads", str(args.threads), "--lora_r", str(lora_r),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    status, peak_kb = Path(f"/proc/{proc.pid}/status"), 0
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = int(line.split()[1])  # monotonic after exec: the last read is the peak
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    err = proc.stderr.read() if proc.stderr else ""
    match = SUMMARY.search(err)
    if proc.returncode or not match:
        raise SystemExit(f"train failed ({proc.returncode}):\n{err[-3000:]}")
    trains = re.search(r"; ([\d.]+[kMB]?) train \(([\d.]+)%\)", err)
    return {
        "tokens_per_s": float(match.group(3).replace(",", "")),
        "peak_rss_mib": peak_kb / 1024,
        "checkpoint_mib": (save_dir / "checkpoint_last.ckpt").stat().st_size / 2**20,
        "trains": f"{trains.group(1)} ({trains.group(2)}%)" if trains else "all",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", default="llama,gpt2", help="comma list of llama, gpt2")
    parser.add_argument("--lora_r", type=int, default=16)
    parser.add_argument("--batch", type=int, default=4, help="sequences per step")
    parser.add_argument("--seq", type=int, default=256, help="tokens per sequence")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2, help="interleaved runs of each (median)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--vocab", type=int, default=4096)
    args = parser.parse_args(argv)

    from bench.gpu_train import write_shards
    from gitnetic.data.tokenizer.params import TokenizerParams
    from gitnetic.data.tokenizer.train import train_tokenizer

    print(
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {args.threads} threads per run, "
        f"batch {args.batch} x {args.seq}, {args.steps} steps, lora_r {args.lora_r}, {args.repeats} repeats",
        flush=True,
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:120]
        texts = (p.read_text(encoding="utf-8", errors="replace") for p in files)
        train_tokenizer(texts, root / "tok", TokenizerParams(vocab_size=args.vocab))
        shards = write_shards(root / "train", args.vocab, (args.steps + 2) * args.batch * args.seq)
        for family in args.families.split(","):
            base = root / f"{family}-base"
            n_params = build_base(family, base, root / "tok")
            runs: dict[str, list[dict[str, Any]]] = {"full": [], "lora": []}
            for repeat in range(args.repeats):
                order = ("full", "lora") if repeat % 2 == 0 else ("lora", "full")
                for kind in order:
                    r = args.lora_r if kind == "lora" else 0
                    run = train(args, base, shards, root / f"{family}-{kind}-{repeat}", r)
                    runs[kind].append(run)
                    print(f"  {family} {kind}: {run}", flush=True)
            med = {
                kind: {
                    key: statistics.median(run[key] for run in runs[kind])
                    for key in ("tokens_per_s", "peak_rss_mib", "checkpoint_mib")
                }
                | {"trains": runs[kind][0]["trains"]}
                for kind in runs
            }
            rows.append((family, n_params, med))
    print()
    print("| model | run | trains | tokens/s | peak RSS MiB | checkpoint MiB |")
    print("|---|---|---:|---:|---:|---:|")
    for family, n_params, med in rows:
        for kind in ("full", "lora"):
            m = med[kind]
            print(
                f"| {family} {n_params / 1e6:.1f}M | {kind} | {m['trains']} | {m['tokens_per_s']:,.0f} | "
                f"{m['peak_rss_mib']:,.0f} | {m['checkpoint_mib']:.2f} |"
            )
        full, lora = med["full"], med["lora"]
        print(
            f"| {family} | LoRA / full | | {lora['tokens_per_s'] / full['tokens_per_s']:.2f} | "
            f"{lora['peak_rss_mib'] / full['peak_rss_mib']:.2f} | {lora['checkpoint_mib'] / full['checkpoint_mib']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
