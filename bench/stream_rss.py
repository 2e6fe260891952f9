"""Peak memory of the data stages while the corpus grows 4x: they stream, so it must stay flat.

Builds a source folder from the standard library's ``.py`` files, and a second one with every file
four times (each copy gets a distinct first line, so deduplication keeps them all). Then runs the real
``corpus`` -> ``tokenizer`` -> ``preprocess`` commands on each as subprocesses and reads each one's
peak RSS from ``os.wait4``. The tokenizer trains on a bounded sample (``--max_sample_bytes``), which is
how a large corpus is handled. Prints one table; the ratio column is 4x-corpus RSS / 1x-corpus RSS.

Run: ``.venv/bin/python bench/stream_rss.py`` (about 2 minutes on 2 cores).
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


def build_source(dst: Path, copies: int, limit_bytes: int) -> int:
    """Write ``copies`` distinct variants of the first ``limit_bytes`` of stdlib .py files into ``dst``."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    total = 0
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    for src in files:
        try:
            text = src.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if total >= limit_bytes:
            break
        rel = src.relative_to(stdlib)
        for c in range(copies):
            out = dst / f"copy{c}" / rel
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(f"# copy {c}\n{text}", encoding="utf-8")
        total += len(text.encode())
    return total * copies


def run_measured(args: list[str], cwd: Path) -> tuple[float, float]:
    """Run ``python -m gitnetic ARGS``; return (wall seconds, peak RSS MiB) of that process alone."""
    env = dict(os.environ, TOKENIZERS_PARALLELISM="true")
    cwd.mkdir(parents=True, exist_ok=True)
    log = cwd / f"{args[0]}.log"  # a file, not a pipe: a full pipe would block the child
    start = time.perf_counter()
    with log.open("wb") as err_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitnetic", *args], cwd=cwd, env=env,
            stdout=subprocess.DEVNULL, stderr=err_fh,
        )  # fmt: skip
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - start
    err = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"gitnetic {' '.join(args)} failed:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # KiB -> MiB on Linux


def pipeline(root: Path, source: Path, sample_bytes: int) -> dict[str, tuple[float, float]]:
    corpus, tok, bins = root / "corpus", root / "tok", root / "bin"
    return {
        "corpus": run_measured(
            ["corpus", "--source", "dir", "--path", str(source), "--max_bytes", "0", "--max_file_bytes", "0",
             "--out_dir", str(corpus)], root),
        "tokenizer": run_measured(
            ["tokenizer", "--train_file", str(corpus / "train.jsonl"), "--out_dir", str(tok),
             "--vocab_size", "8192", "--max_sample_bytes", str(sample_bytes)], root),
        "preprocess": run_measured(
            ["preprocess", "--tokenizer_path", str(tok), "--input_dir", str(corpus), "--output_dir", str(bins)],
            root),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source_bytes", type=int, default=24_000_000, help="bytes of stdlib per copy")
    parser.add_argument("--max_sample_bytes", type=int, default=8_000_000, help="tokenizer training sample")
    parser.add_argument("--scale", type=int, default=4, help="how many times larger the second corpus is")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="gitnetic-rss-"))
    try:
        results = {}
        for copies in (1, args.scale):
            src = work / f"src{copies}"
            size = build_source(src, copies, args.source_bytes)
            results[copies] = (size, pipeline(work / f"run{copies}", src, args.max_sample_bytes))
            shutil.rmtree(src)
        (s1, r1), (sn, rn) = results[1], results[args.scale]
        print(f"corpus sizes: {s1 / 1e6:.1f} MB and {sn / 1e6:.1f} MB ({sn / s1:.2f}x)")
        print(
            f"| stage | 1x wall s | 1x peak RSS MiB | {args.scale}x wall s | {args.scale}x peak RSS MiB | RSS ratio |"
        )
        print("|---|---:|---:|---:|---:|---:|")
        for stage in r1:
            (w1, m1), (wn, mn) = r1[stage], rn[stage]
            print(f"| {stage} | {w1:.1f} | {m1:.0f} | {wn:.1f} | {mn:.0f} | {mn / m1:.2f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
