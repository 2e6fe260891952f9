"""Start-up cost of each stage's CLI, against a baseline commit measured in the same run.

Why: the test suite and every DVC/Snakemake run start ``python -m gitnetic <stage>`` dozens of times, and
a stage that loads torch (and Lightning) before it parses its flags pays seconds and hundreds of MB for
each start, even for ``--help`` or a typo. This times, for the current checkout and for
``BASELINE_COMMIT`` (extracted with ``git archive`` into a temporary folder), each checkout's
``gitnetic/`` copied there and byte-compiled untimed (so neither pays for compiling, whatever
PYTHONDONTWRITEBYTECODE says), run from there through PYTHONPATH:

* ``python -m gitnetic <stage> --help`` for every subcommand (start-up plus building the parser);
* real tiny runs of the data stages on the stdlib ``json`` package: ``corpus``, ``tokenizer`` (vocab
  300, ``--fim_tokens true``) and ``preprocess`` (with the tokenizer the current checkout trained).

Each command runs ``--repeats`` times, baseline and current interleaved; the table shows the median
wall seconds and CPU seconds (user + system of the child, less sensitive to other processes on a busy
machine), the ratio baseline / current of each (above 1: faster now), and the heavy packages (torch,
lightning, transformers) each checkout's process loaded (from one more run with ``-X importtime``). The load
average at the start and the end is printed: compare ratios, not seconds, on a shared machine.

Run (repository root): ``.venv/bin/python bench/cli_startup.py [--repeats 3]``. Nothing is asserted.
"""

from __future__ import annotations

import argparse
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
IMPORT_LINE = re.compile(r"^import time:\s+\d+ \|\s+\d+ \| ( *)(\S+)$")


@dataclass
class Timings:
    """Wall and CPU seconds of the repeats of one command in one checkout."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    heavy: list[str] = field(default_factory=list)


def extract_checkouts(work: Path) -> dict[str, Path]:
    """``BASELINE_COMMIT``'s ``gitnetic/`` under ``work/baseline`` and this checkout's (working tree) under
    ``work/current``, both byte-compiled (untimed)."""
    base, current = work / "baseline", work / "current"
    base.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", BASELINE_COMMIT, "gitnetic"], capture_output=True
    )
    if archive.returncode:
        sys.exit(f"cannot extract the baseline {BASELINE_COMMIT}: {archive.stderr.decode().strip()}")
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


def data_inputs(work: Path, current: Path) -> dict[str, list[str]]:
    """The real tiny runs' arguments; their inputs (a corpus, a tokenizer) made once by the current code."""
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
    run_cli(current, ["tokenizer", *tok, "--out_dir", str(work / "tokenizer")], work)
    return {
        "corpus run": ["corpus", "--source", "dir", "--path", str(src), "--out_dir", "out/corpus"],
        "tokenizer run": ["tokenizer", *tok, "--out_dir", "out/tokenizer"],
        "preprocess run": [
            "preprocess", "--tokenizer_path", str(work / "tokenizer"), "--input_dir", str(work / "corpus"),
            "--output_dir", "out/bin", "--workers", "1",
        ],
    }  # fmt: skip


def measure(commands: dict[str, list[str]], checkouts: dict[str, Path], work: Path, repeats: int) -> dict:
    """Every command ``repeats`` times per checkout, interleaved; then once with ``-X importtime``."""
    results = {label: {name: Timings() for name in checkouts} for label in commands}
    for _ in range(repeats):
        for label, argv in commands.items():
            for name, code in checkouts.items():
                cwd = Path(tempfile.mkdtemp(dir=work))
                wall, cpu, _ = run_cli(code, argv, cwd)
                results[label][name].wall.append(wall)
                results[label][name].cpu.append(cpu)
    for label, argv in commands.items():
        for name, code in checkouts.items():
            _, _, err = run_cli(code, argv, Path(tempfile.mkdtemp(dir=work)), importtime=True)
            results[label][name].heavy = heavy_modules(err)
    return results


def report(results: dict) -> None:
    print(f"| command | baseline {BASELINE_COMMIT} wall s | current wall s | × wall | baseline CPU s | "
          "current CPU s | × CPU | heavy imports baseline → current |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for label, by in results.items():
        base, cur = by["baseline"], by["current"]
        bw, cw = statistics.median(base.wall), statistics.median(cur.wall)
        bc, cc = statistics.median(base.cpu), statistics.median(cur.cpu)
        heavy = f"{', '.join(base.heavy) or '-'} → {', '.join(cur.heavy) or '-'}"
        print(
            f"| `{label}` | {bw:.2f} | {cw:.2f} | {bw / cw:.2f} | {bc:.2f} | {cc:.2f} | {bc / cc:.2f} | {heavy} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--repeats", type=int, default=3, help="Runs per command and checkout (median shown)."
    )
    args = parser.parse_args()
    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="cli_startup_") as tmp:
        work = Path(tmp)
        checkouts = extract_checkouts(work)
        commands = {f"{stage} --help": [stage, "--help"] for stage in STAGES}
        commands.update(data_inputs(work, checkouts["current"]))
        results = measure(commands, checkouts, work, args.repeats)
    print(
        f"load average (1, 5, 15 min) at start {load_start}, at end {os.getloadavg()}; {os.cpu_count()} CPUs\n"
    )
    report(results)


if __name__ == "__main__":
    main()
