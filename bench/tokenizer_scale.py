"""Tokenizer stage on a big train split and on one 4x larger: the default ``max_sample_bytes`` keeps its cost flat.

Workload: the train split of this Python's own ``site-packages`` (a real, messy corpus of about 250 MB:
``python -m gitnetic corpus --source dir --path SITE_PACKAGES --max_bytes 0 --neardup.enabled false
--redact.secrets false``), and the same split with its lines repeated ``--scale`` times. Runs the real
``python -m gitnetic tokenizer`` (CLI defaults: vocab 16384) as a subprocess, three times:

* ``1x, all``: the 1x split with ``--max_sample_bytes 0`` (every document: the baseline);
* ``1x, default cap`` and ``Nx, default cap``: the default ``max_sample_bytes`` (a seeded sample when
  the split's file is larger than it).

Each run's wall time, CPU time (user + system: steadier than wall time on a shared machine) and peak
RSS come from ``os.wait4`` on that process alone; its own cost line is printed too; each tokenizer's
compression (bytes/token) on the corpus's valid split says what the sample costs in quality. Prints a
Markdown table and the Nx/1x ratios (goal: about 1) and default-cap/all ratios, all measured in this run.

Run: ``.venv/bin/python bench/tokenizer_scale.py`` (10 minutes on a loaded 2-core machine with
``--train_file``, plus about a minute to build the split; ``--train_file`` reuses a split built before,
with its ``valid.jsonl`` beside it; ``--skip_baseline`` drops the uncapped run).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from gitnetic.data.jsonl import iter_jsonl_texts
from gitnetic.data.tokenizer.load import load_backend_tokenizer
from gitnetic.data.tokenizer.params import TokenizerParams


def gitnetic(args: list[str], cwd: Path, log: Path) -> tuple[float, float, float, str]:
    """Run ``python -m gitnetic ARGS``; (wall s, CPU s, peak RSS MiB, stderr) of that process alone."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true")  # what a user gets: all cores
    start = time.perf_counter()
    with log.open("wb") as err:  # a file, not a pipe: a full pipe would block the child
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitnetic", *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"gitnetic {' '.join(args)} failed:\n{text[-2000:]}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, text  # KiB -> MiB on Linux


def build_split(work: Path) -> Path:
    """The site-packages train split (near-dedup and redaction off: this bench is about the tokenizer)."""
    site = sysconfig.get_paths()["purelib"]
    out = work / "corpus"
    print(f"building the train split of {site} ...", flush=True)
    args = ["corpus", "--source", "dir", "--path", site, "--max_bytes", "0", "--out_dir", str(out),
            "--neardup.enabled", "false", "--redact.secrets", "false"]  # fmt: skip
    gitnetic(args, work, work / "corpus.log")
    return out / "train.jsonl"


def repeat_lines(src: Path, dst: Path, times: int) -> Path:
    """``src`` written ``times`` times over: every document ``times`` times, the split ``times`` x larger."""
    with dst.open("wb") as out:
        for _ in range(times):
            with src.open("rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    return dst


def bytes_per_token(tokenizer_dir: Path, valid: Path) -> float:
    """Compression of the trained tokenizer on the held-out valid split: did sampling cost quality?"""
    texts = list(iter_jsonl_texts(valid))
    tokenizer = load_backend_tokenizer(tokenizer_dir)
    tokens = sum(len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=False))
    return sum(len(t.encode("utf-8", "surrogatepass")) for t in texts) / tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--train_file", help="a train split built before (default: build it from site-packages)"
    )
    parser.add_argument("--scale", type=int, default=4, help="how many times larger the second split is")
    parser.add_argument("--skip_baseline", action="store_true", help="skip the uncapped 1x run")
    args = parser.parse_args()
    cap = TokenizerParams().max_sample_bytes
    work = Path(tempfile.mkdtemp(prefix="gitnetic-tokscale-"))
    try:
        one = Path(args.train_file).resolve() if args.train_file else build_split(work)
        many = repeat_lines(one, work / f"train{args.scale}x.jsonl", args.scale)
        valid = one.with_name("valid.jsonl")
        runs = [
            ("1x, all", one, 0),
            ("1x, default cap", one, cap),
            (f"{args.scale}x, default cap", many, cap),
        ]
        if args.skip_baseline:
            runs = runs[1:]
        results = {}
        for name, split, max_bytes in runs:
            print(
                f"{name}: {split.stat().st_size / 1e6:.1f} MB split, max_sample_bytes {max_bytes} ...",
                flush=True,
            )
            out = work / f"tok-{len(results)}"
            stage = [
                "tokenizer",
                "--train_file",
                str(split),
                "--out_dir",
                str(out),
                "--max_sample_bytes",
                str(max_bytes),
            ]
            wall, cpu, rss, log = gitnetic(stage, work, work / f"tok-{len(results)}.log")
            print("   ", next((ln for ln in log.splitlines() if ln.startswith("tokenizer: trained")), "?"))
            results[name] = (split.stat().st_size, wall, cpu, rss, bytes_per_token(out, valid))
            shutil.rmtree(out)
        print(
            f"\ndefault max_sample_bytes {cap:,}; compression on {valid} ({valid.stat().st_size / 1e6:.1f} MB)\n"
        )
        print(
            "| run | split MB | wall s | CPU s | peak RSS MiB | valid bytes/token |\n|---|---:|---:|---:|---:|---:|"
        )
        for name, (size, wall, cpu, rss, bpt) in results.items():
            print(f"| {name} | {size / 1e6:.1f} | {wall:.1f} | {cpu:.1f} | {rss:.0f} | {bpt:.3f} |")
        (_, w1, c1, m1, _), (_, wn, cn, mn, _) = results[runs[-2][0]], results[runs[-1][0]]
        print(
            f"\n{args.scale}x / 1x at the default cap: wall {wn / w1:.2f}, CPU {cn / c1:.2f}, peak RSS {mn / m1:.2f}"
        )
        if "1x, all" in results:
            _, w0, c0, m0, _ = results["1x, all"]
            print(f"1x default cap / 1x all: wall {w1 / w0:.2f}, CPU {c1 / c0:.2f}, peak RSS {m1 / m0:.2f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
