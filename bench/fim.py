"""Fill-in-the-middle vs plain causal-LM training at equal steps, and ``generate`` vs transformers' own.

Part 1, quality (FIM should cost little left-to-right quality, and buy infilling). On the default
pipeline's corpus (``params.yaml:corpus``: 6 MB of the Python standard library), one tokenizer made with
``--fim_tokens true`` (so both models have the same vocabulary), one preprocess; then the default
pipeline's training (``params.yaml:train``: the 3 x 128 GPT-2, 16 x 128-token packed blocks, same seed,
so both see the same batches) twice at ``--max_steps`` steps: ``--fim_rate 0`` (plain CLM) and
``--fim_rate 0.5`` (SPM share 0.5). Each is scored by the real ``evaluate`` stage on the test split:
held-out perplexity (plain left-to-right text for both), next-line exact match and single-line infilling
exact match on the same ``--completion_samples`` lines (gitnetic/evaluation/completion.py). Every stage runs
as ``python -m gitnetic ...`` in a subprocess, exactly as the pipeline runs it, in a scratch folder.

Part 2, decoding speed. On the FIM model just trained: the same prompts (held-out lines' contexts),
greedy, ``--new_tokens`` tokens each (``</s>`` suppressed so every run writes the same number), decoded
by gitnetic's ``Generator.run`` (with and without streaming to a text stream, as the CLI prints) and by
``model.generate`` called directly, interleaved in rotating order ``--repeats`` times, in this process
with ``--decode_threads`` torch threads; the report is the median tokens/s of each and the ratio to
transformers.

    python bench/fim.py                         # CPU budget: 100 steps per model (3 min on 2 cores)
    python bench/fim.py --max_steps 250         # the default pipeline's budget (4 min)

A benchmark, not a test: the figures go to bench/RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def gitnetic(*args: Any, threads: int) -> float:
    """``python -m gitnetic ARGS`` from the repository root (params.yaml's relative paths); wall seconds."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="false")
    env.setdefault("WANDB_MODE", "disabled")
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gitnetic", *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True
    )
    if proc.returncode:
        sys.exit(f"gitnetic {args[0]} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def prepare(work: Path, threads: int) -> dict[str, Path]:
    """Corpus (params.yaml's), a FIM tokenizer, shards: the inputs both trainings share."""
    paths = {"corpus": work / "corpus", "tokenizer": work / "tokenizer", "bin": work / "bin"}
    if not (paths["bin"] / "done").exists():
        t = gitnetic(
            "corpus", "--config", "params.yaml:corpus", "--out_dir", paths["corpus"], threads=threads
        )
        print(f"corpus: {t:.1f} s")
        t = gitnetic(
            "tokenizer", "--config", "params.yaml:tokenizer", "--train_file", paths["corpus"] / "train.jsonl",
            "--out_dir", paths["tokenizer"], "--fim_tokens", "true", threads=threads,
        )  # fmt: skip
        print(f"tokenizer (with FIM tokens): {t:.1f} s")
        t = gitnetic(
            "preprocess", "--config", "params.yaml:preprocess", "--tokenizer_path", paths["tokenizer"],
            "--input_dir", paths["corpus"], "--output_dir", paths["bin"], threads=threads,
        )  # fmt: skip
        print(f"preprocess: {t:.1f} s")
        (paths["bin"] / "done").touch()
    return paths


def train_and_evaluate(name: str, fim_rate: float, paths: dict[str, Path], work: Path, args: Any) -> dict:
    save_dir = work / name / "checkpoints"
    t = gitnetic(
        "train", "--config", "params.yaml:train", "--tokenizer_path", paths["tokenizer"],
        "--train_data_prefix", paths["bin"] / "train", "--val_data_prefix", paths["bin"] / "valid",
        "--max_steps", args.max_steps, "--save_step_frequency", args.max_steps, "--limit_val_batches", 0,
        "--save_dir", save_dir, "--dvclive_dir", work / name / "dvclive", "--fim_rate", fim_rate,
        "--progress_bar_refresh_rate", 0, "--num_threads", args.threads, "--seed", args.seed,
        threads=args.threads,
    )  # fmt: skip
    out = work / name / "eval.json"
    e = gitnetic(
        "evaluate", "--config", "params.yaml:evaluate", "--checkpoint", save_dir,
        "--tokenizer_path", paths["tokenizer"], "--data_prefix", paths["bin"] / "test",
        "--train_prefix", paths["bin"] / "train", "--completion_samples", args.completion_samples,
        "--output", out, "--num_threads", args.threads, threads=args.threads,
    )  # fmt: skip
    metrics = json.loads(out.read_text())
    metrics.update(train_s=t, evaluate_s=e, checkpoint=str(save_dir))
    print(
        f"{name}: train {t:.0f} s, evaluate {e:.0f} s; perplexity {metrics['perplexity']:.2f}; next-line EM "
        f"{metrics['next_line_exact_match']:.3f}, edit sim {metrics['next_line_edit_similarity']:.3f}; infill "
        f"EM {metrics['infill_exact_match']:.3f}, edit sim {metrics['infill_edit_similarity']:.3f} "
        f"({metrics['next_line_samples']} lines)"
    )
    return metrics


def decode_speed(checkpoint: str, paths: dict[str, Path], args: Any) -> dict[str, float]:
    """Median tokens/s of Generator.run (streamed and not) and model.generate on the same prompts."""
    import numpy as np
    import torch
    import yaml

    from gitnetic.common.threads import set_torch_threads
    from gitnetic.data.shards.indexed import IndexedDataset
    from gitnetic.evaluation.completion import newline_token_mask, sample_lines
    from gitnetic.inference.generate import Generator, load_generation_model
    from gitnetic.inference.params import DecodingParams

    set_torch_threads(args.decode_threads)
    config = REPO / yaml.safe_load((REPO / "params.yaml").read_text())["train"]["config_path"]
    model, tokenizer = load_generation_model(checkpoint, str(config), str(paths["tokenizer"]))
    generator = Generator(model, tokenizer, device="cpu")
    context = generator.context - args.new_tokens
    test = IndexedDataset(str(paths["bin"] / "test"))
    lines = sample_lines(test, tokenizer, newline_token_mask(tokenizer, len(tokenizer)), args.prompts, seed=1)
    prompts = [np.asarray(test[line.document][: line.start])[-context:].tolist() for line in lines]
    params = DecodingParams(greedy=True, max_new_tokens=args.new_tokens)
    # </s> never ends a run early, so each contender writes exactly new_tokens per prompt
    model.generation_config.eos_token_id = None
    generator.eos_id = None
    no_eos = {"suppress_tokens": [int(tokenizer.eos_token_id)]}
    model.generation_config.suppress_tokens = no_eos["suppress_tokens"]

    def hf() -> tuple[int, float]:
        tokens, seconds = 0, 0.0
        for ids in prompts:
            input_ids = torch.tensor([ids])
            start = time.perf_counter()
            with torch.inference_mode():
                out = model.generate(
                    input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=False,
                    max_new_tokens=args.new_tokens, pad_token_id=tokenizer.pad_token_id,
                )  # fmt: skip
            seconds += time.perf_counter() - start
            tokens += out.shape[1] - len(ids)
        return tokens, seconds

    def ours(stream: bool) -> tuple[int, float]:
        tokens, seconds = 0, 0.0
        for ids in prompts:
            result = generator.run(ids, params, out=io.StringIO() if stream else None)
            tokens += result.new_tokens
            seconds += result.seconds
        return tokens, seconds

    contenders = {"transformers": hf, "gitnetic": lambda: ours(False), "gitnetic_stream": lambda: ours(True)}
    names = list(contenders)
    rates: dict[str, list[float]] = {n: [] for n in names}
    hf()  # warm-up (first-call allocations)
    for r in range(args.repeats):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            tokens, seconds = contenders[name]()
            assert tokens == len(prompts) * args.new_tokens, (name, tokens)
            rates[name].append(tokens / seconds)
    medians = {name: statistics.median(v) for name, v in rates.items()}
    print(
        f"generate ({len(prompts)} prompts x {args.new_tokens} new tokens, greedy, {args.repeats} repeats, "
        f"median tokens/s): transformers {medians['transformers']:.0f}, gitnetic {medians['gitnetic']:.0f}, "
        f"gitnetic streamed {medians['gitnetic_stream']:.0f}; gitnetic/transformers = "
        f"{medians['gitnetic'] / medians['transformers']:.3f}, streamed/transformers = "
        f"{medians['gitnetic_stream'] / medians['transformers']:.3f}"
    )
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max_steps", type=int, default=100, help="training steps per model (pipeline: 250)")
    parser.add_argument(
        "--seed", type=int, default=1234, help="training seed of both runs (params.yaml: 1234)"
    )
    parser.add_argument("--completion_samples", type=int, default=100, help="held-out lines scored")
    parser.add_argument(
        "--threads", type=int, default=2, help="train/evaluate --num_threads (params.yaml: 2)"
    )
    parser.add_argument("--prompts", type=int, default=8, help="generate benchmark: prompts")
    parser.add_argument("--new_tokens", type=int, default=64, help="generate benchmark: tokens per prompt")
    parser.add_argument("--repeats", type=int, default=3, help="generate benchmark: timed rounds")
    parser.add_argument(
        "--decode_threads",
        type=int,
        default=1,
        help="generate benchmark: torch threads (1: a tiny model's per-token ops only lose from more)",
    )
    parser.add_argument("--work_dir", type=Path, help="keep data and models here (default: a temp dir)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="gitnetic-fim-bench-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        paths = prepare(work, args.threads)
        clm = train_and_evaluate("clm", 0.0, paths, work, args)
        fim = train_and_evaluate("fim", 0.5, paths, work, args)
        print(
            f"FIM/CLM at {args.max_steps} steps: perplexity x{fim['perplexity'] / clm['perplexity']:.3f}, "
            f"next-line EM {fim['next_line_exact_match'] - clm['next_line_exact_match']:+.3f}, "
            f"infill EM {fim['infill_exact_match'] - clm['infill_exact_match']:+.3f}; edit sim next-line "
            f"{fim['next_line_edit_similarity'] - clm['next_line_edit_similarity']:+.3f}, infill "
            f"{fim['infill_edit_similarity'] - clm['infill_edit_similarity']:+.3f}"
        )
        speed = decode_speed(fim["checkpoint"], paths, args)
        print(f"total {time.perf_counter() - start:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"clm": clm, "fim": fim, "generate_tokens_per_s": speed}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
