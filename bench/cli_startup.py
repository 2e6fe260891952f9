"""Start-up cost of each stage's CLI, against a baseline commit measured in the same run.

Why: the test suite and every DVC/Snakemake run start ``python -m gitnetic <stage>`` dozens of times, and
a stage that loads torch (and Lightning) before it parses its flags pays seconds and hundreds of MB for
each start, even for ``--help`` or a typo. This times, for the current checkout and for a baseline
commit (``--baseline``, default ``BASELINE_COMMIT``; extracted with ``git archive`` into a temporary
folder), each checkout's ``gitnetic/`` copied there and byte-compiled untimed (so neither pays for
compiling, whatever PYTHONDONTWRITEBYTECODE says), run from there through PYTHONPATH:

* ``python -m gitnetic <stage> --help`` for every subcommand (start-up plus building the parser);
* real tiny runs of the data stages on the stdlib ``json`` package: ``corpus``, ``tokenizer`` (vocab
  300, ``--fim_tokens true``) and ``preprocess`` (with the tokenizer the current checkout trained);
* real tiny runs of the torch stages, whose cost is mostly loading torch, transformers and Lightning and
  tearing them down: ``train`` (GPT-2 1 layer x 32, 8 steps of batch 4, 64-token blocks on those shards, with
  validation, checkpoints and DVCLive as the pipeline runs it), then ``evaluate`` and ``export`` of the
  checkpoint that checkout's own ``train`` made once, untimed, before the repeats.

Each command runs ``--repeats`` times, baseline and current interleaved; the table shows the median
wall seconds and CPU seconds (user + system of the child, less sensitive to other processes on a busy
machine), the ratio baseline / current of each (above 1: faster now), the range of the CPU ratio over the
back-to-back pairs of runs, the heavy packages (torch, lightning, transformers) each checkout's process
loaded (from one more run with ``-X importtime``), and whether the files the two checkouts' last timed
runs wrote are byte-identical (a change that only makes start-up faster must not change them; DVCLive's
measured throughput, step time and memory are left out). The load average at the start and the end is
printed: compare ratios, not seconds, on a shared machine.

Run (repository root): ``.venv/bin/python bench/cli_startup.py [--repeats 3] [--baseline COMMIT]
[--only help,train,evaluate,export]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "ac575a2"  # main before the tokenizer stage stopped loading torch
STAGES = ("init", "corpus", "tokenizer", "preprocess", "train", "evaluate", "export", "benchmark", "summary")
STAGES += ("generate",)
HEAVY = ("torch", "lightning", "transformers")
RUNS = ("corpus", "tokenizer", "preprocess", "train", "evaluate", "export")  # --only also takes "help"
# The tests' tiny GPT-2 (tests/helpers/models.py: TINY_MODEL_CONFIG): a train step takes milliseconds, so
# the timed runs are the stages' fixed costs.
TINY_MODEL = """model:
  name: transformers.GPT2LMHeadModel
  config: transformers.GPT2Config
  config_params: {n_embd: 32, n_layer: 1, n_head: 2, n_inner: 64, n_positions: 64}
"""
MODEL_LINK = "model"  # in each run's folder: the checkout's own untimed train run (evaluate, export read it)
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$")


@dataclass
class Timings:
    """Wall and CPU seconds of the repeats of one command in one checkout."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    heavy: list[str] = field(default_factory=list)
    last_cwd: Path | None = None  # where the last timed run wrote its ``out/``


def extract_checkouts(work: Path, baseline: str) -> dict[str, Path]:
    """``baseline``'s ``gitnetic/`` under ``work/baseline`` and this checkout's (working tree) under
    ``work/current``, both byte-compiled (untimed)."""
    base, current = work / "baseline", work / "current"
    base.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", baseline, "gitnetic"], capture_output=True)
    if archive.returncode:
        sys.exit(f"cannot extract the baseline {baseline}: {archive.stderr.decode().strip()}")
    subprocess.run(["tar", "-x", "-C", str(base)], input=archive.stdout, check=True)
    shutil.copytree(REPO / "gitnetic", current / "gitnetic", ignore=shutil.ignore_patterns("__pycache__"))
    for code in (base, current):
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "gitnetic")], check=True)
    return {"baseline": base, "current": current}


def run_cli(code: Path, argv: list[str], cwd: Path, importtime: bool = False) -> tuple[float, float, str]:
    """``python -m gitnetic ARGV`` from checkout ``code``: (wall s, child CPU s, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    flags = ["-X", "importtime"] if importtime else []
    proc = subprocess.run(
        [sys.executable, *flags, "-m", "gitnetic", *argv], cwd=cwd, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        sys.exit(f"{' '.join(argv)} failed in {code}:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc.stderr


def heavy_modules(importtime_stderr: str) -> list[str]:
    """The top-level packages of ``HEAVY`` that a ``-X importtime`` run imported."""
    names = {m.group(2).split(".")[0] for m in map(IMPORT_LINE.match, importtime_stderr.splitlines()) if m}
    return [name for name in HEAVY if name in names]


def data_inputs(work: Path, current: Path, only: set[str]) -> dict[str, list[str]]:
    """The real tiny runs' arguments (the torch stages' only if ``only`` names one); their inputs (a
    corpus, a tokenizer, shards) made once by the current code, untimed."""
    src = work / "src"
    shutil.copytree(Path(sysconfig.get_paths()["stdlib"]) / "json", src / "json")
    run_cli(
        current, ["corpus", "--source", "dir", "--path", str(src), "--out_dir", str(work / "corpus")], work
    )
    tok = [
        "--train_file",
        str(work / "corpus" / "train.jsonl"),
        "--vocab_size",
        "300",
        "--fim_tokens",
        "true",
    ]
    tokenizer = work / "tokenizer"
    run_cli(current, ["tokenizer", *tok, "--out_dir", str(tokenizer)], work)
    preprocess = [
        "preprocess", "--tokenizer_path", str(tokenizer), "--input_dir", str(work / "corpus"), "--workers", "1",
    ]  # fmt: skip
    commands = {
        "corpus run": ["corpus", "--source", "dir", "--path", str(src), "--out_dir", "out/corpus"],
        "tokenizer run": ["tokenizer", *tok, "--out_dir", "out/tokenizer"],
        "preprocess run": [*preprocess, "--output_dir", "out/bin"],
    }
    if only & {"train", "evaluate", "export"}:
        run_cli(current, [*preprocess, "--output_dir", str(work / "bin")], work)
        (work / "tiny.yaml").write_text(TINY_MODEL)
        model = ["--config_path", str(work / "tiny.yaml"), "--tokenizer_path", str(tokenizer)]
        checkpoint = ["--checkpoint", f"{MODEL_LINK}/checkpoints/checkpoint_last.ckpt", *model]
        commands["train run"] = [
            "train", "--task", "transformer-task", *model,
            "--train_data_prefix", str(work / "bin" / "train"), "--val_data_prefix", str(work / "bin" / "valid"),
            "--batch_size", "4", "--max_length", "64", "--packing", "true", "--max_steps", "8", "--warmup_steps", "2",
            "--learning_rate", "3e-3", "--val_check_interval", "4", "--limit_val_batches", "2",
            "--save_step_frequency", "4", "--log_every_n_steps", "1", "--progress_bar_refresh_rate", "0",
            "--gpus", "0", "--num_threads", "1", "--save_dir", "out/checkpoints", "--dvclive_dir", "out/dvclive",
        ]  # fmt: skip
        commands["evaluate run"] = [
            "evaluate", *checkpoint, "--data_prefix", str(work / "bin" / "test"),
            "--train_prefix", str(work / "bin" / "train"), "--max_length", "64", "--batch_size", "4",
            "--num_threads", "1", "--completion_samples", "4", "--output", "out/eval.json",
        ]  # fmt: skip
        commands["export run"] = [
            "export", *checkpoint, "--corpus_stats", str(work / "corpus" / "stats.json"), "--output_dir", "out/hf",
        ]  # fmt: skip
    return commands


def train_models(train: list[str], checkouts: dict[str, Path], work: Path) -> dict[str, Path]:
    """Each checkout's own tiny model, trained once untimed: what its ``evaluate``/``export`` runs read
    (through ``MODEL_LINK``), so their identical outputs also show identical training."""
    models = {}
    for name, code in checkouts.items():
        cwd = work / f"model-{name}"
        cwd.mkdir()
        run_cli(code, train, cwd)
        models[name] = cwd / "out"
    return models


def run_folder(work: Path, model: Path | None) -> Path:
    """The folder every run starts in, fresh, with ``MODEL_LINK`` in it pointing at the checkout's trained
    model. Always the same path: Lightning writes its checkpoint folder's absolute path into checkpoints,
    and the outputs of the two checkouts are compared byte for byte."""
    cwd = work / "run"
    cwd.mkdir()
    if model is not None:
        (cwd / MODEL_LINK).symlink_to(model, target_is_directory=True)
    return cwd


def measure(
    commands: dict[str, list[str]],
    checkouts: dict[str, Path],
    work: Path,
    repeats: int,
    models: dict[str, Path],
) -> dict:
    """Every command ``repeats`` times per checkout, interleaved; then once with ``-X importtime``."""
    results = {label: {name: Timings() for name in checkouts} for label in commands}
    for _ in range(repeats):
        for label, argv in commands.items():
            for name, code in checkouts.items():
                wall, cpu, _ = run_cli(code, argv, run_folder(work, models.get(name)))
                kept = Path(tempfile.mkdtemp(dir=work)) / "run"
                (work / "run").rename(kept)
                results[label][name].wall.append(wall)
                results[label][name].cpu.append(cpu)
                results[label][name].last_cwd = kept
    for label, argv in commands.items():
        for name, code in checkouts.items():
            _, _, err = run_cli(code, argv, run_folder(work, models.get(name)), importtime=True)
            shutil.rmtree(work / "run")
            results[label][name].heavy = heavy_modules(err)
    return results


def without_timings(value: object) -> object:
    """A JSON value without its ``perf`` entries (DVCLive's measured throughput, step time and memory)."""
    if isinstance(value, dict):
        return {key: without_timings(item) for key, item in value.items() if key != "perf"}
    return value


def digests(out: Path) -> dict[str, str]:
    """SHA-256 of every file under ``out``, by path relative to it; a JSON file's without its measured
    timings, and files under a ``perf`` folder (timings only) as ``"timing"``."""
    found = {}
    for path in sorted(out.rglob("*") if out.is_dir() else ()):
        if not path.is_file():
            continue
        name = str(path.relative_to(out))
        if "perf" in path.relative_to(out).parts:
            found[name] = "timing"
            continue
        data = path.read_bytes()
        if path.suffix == ".json":
            data = json.dumps(without_timings(json.loads(data)), sort_keys=True).encode()
        found[name] = hashlib.sha256(data).hexdigest()
    return found


def same_outputs(base: Timings, cur: Timings) -> str:
    """Whether the two checkouts' last timed runs wrote the same files, byte for byte (measured timings
    left out: they differ between any two runs)."""
    assert base.last_cwd is not None and cur.last_cwd is not None
    old, new = digests(base.last_cwd / "out"), digests(cur.last_cwd / "out")
    if not old and not new:
        return "-"
    timings = sum(digest == "timing" for digest in old.values())
    differ = sorted(path for path in old.keys() | new.keys() if old.get(path) != new.get(path))
    note = f", {timings} timing files not compared" if timings else ""
    if not differ:
        return f"identical ({len(old) - timings} files{note})"
    return f"{len(old | new) - len(differ)} identical{note}; differ: {', '.join(differ)}"


def report(results: dict, baseline: str) -> None:
    print(f"| command | baseline {baseline} wall s | current wall s | × wall | baseline CPU s | "
          "current CPU s | × CPU | × CPU per repeat | heavy imports baseline → current | outputs baseline vs current |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for label, by in results.items():
        base, cur = by["baseline"], by["current"]
        bw, cw = statistics.median(base.wall), statistics.median(cur.wall)
        bc, cc = statistics.median(base.cpu), statistics.median(cur.cpu)
        pairs = [old / new for old, new in zip(base.cpu, cur.cpu, strict=True)]  # run back to back
        heavy = f"{', '.join(base.heavy) or '-'} → {', '.join(cur.heavy) or '-'}"
        print(
            f"| `{label}` | {bw:.2f} | {cw:.2f} | {bw / cw:.2f} | {bc:.2f} | {cc:.2f} | {bc / cc:.2f} "
            f"| {min(pairs):.2f}–{max(pairs):.2f} | {heavy} | {same_outputs(base, cur)} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="Runs per command and checkout (median shown)."
    )
    parser.add_argument(
        "--baseline", default=BASELINE_COMMIT, help=f"Commit to compare with (default {BASELINE_COMMIT})."
    )
    parser.add_argument(
        "--only",
        default=",".join(("help", *RUNS)),
        help=f"Comma-separated rows to run: help (every --help row) and/or the real runs {', '.join(RUNS)}.",
    )
    args = parser.parse_args()
    only = {item.strip() for item in args.only.split(",") if item.strip()}
    if unknown := sorted(only - {"help", *RUNS}):
        sys.exit(
            f"cli_startup.py: --only: unknown {', '.join(unknown)} (choose from help, {', '.join(RUNS)})"
        )
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cli_startup_") as tmp:
        work = Path(tmp)
        checkouts = extract_checkouts(work, args.baseline)
        commands = {f"{stage} --help": [stage, "--help"] for stage in STAGES} if "help" in only else {}
        runs = data_inputs(work, checkouts["current"], only)
        commands.update({label: argv for label, argv in runs.items() if label.split()[0] in only})
        models = train_models(runs["train run"], checkouts, work) if only & {"evaluate", "export"} else {}
        results = measure(commands, checkouts, work, args.repeats, models)
        print(
            f"load average (1, 5, 15 min) at start {load_start}, at end {os.getloadavg()}; "
            f"{os.cpu_count()} CPUs\n"
        )
        report(results, args.baseline)


if __name__ == "__main__":
    main()
