"""Binarize benchmark: gitnetic preprocess vs its own encoder limit, HF encode_batch and a Megatron-style loop.

Not a test (timings never go in tests). One run prints, on the same files -- this Python's standard
library sources as a JSONL corpus, and a 16k byte-level BPE trained on them once (cached):

* ``raw``        -- the fastest exact encoder alone (``build_encoder``), texts already in memory: the limit;
* ``gitnetic``   -- ``preprocess()`` end to end in-process: tokenizer load, encoder build + validation,
                    JSONL read, encode, ``.bin``/``.idx`` write (Python start-up excluded; see ``cli``);
* ``hf``         -- the same pipeline with ``--encoder hf`` (HF ``encode_batch`` + writing);
* ``megatron``   -- a Megatron-style loop: ``json.loads`` + HF ``encode`` one document at a time +
                    megatron-core's ``IndexedDatasetBuilder``;
* ``cli``        -- ``python -m gitnetic preprocess`` as a subprocess (wall incl. start-up) with its peak
                    RSS, on the corpus and on it repeated 4x and 8x (memory must stay flat).

Each timing is the best of ``--repeats`` runs, interleaved, because a shared machine is noisy. All
outputs are checked to hold identical tokens. Usage::

    .venv/bin/python bench/binarize.py [--repeats 3] [--cache_dir /tmp/gitnetic-bench] [--workers 0]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import sysconfig
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gitnetic.data.shards import binarize as pp  # noqa: E402
from gitnetic.data.shards.encoder import available_cpus, build_encoder  # noqa: E402
from gitnetic.data.shards.indexed import IndexedDataset  # noqa: E402
from gitnetic.data.tokenizer.load import load_backend_tokenizer  # noqa: E402


def stdlib_texts() -> list[tuple[str, str]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        if "site-packages" in path.parts:
            continue
        try:
            out.append((str(path.relative_to(root)), path.read_text("utf-8")))
        except (OSError, UnicodeDecodeError):
            continue
    return out


def prepare(cache: Path, scales: list[int]) -> tuple[dict[int, Path], Path]:
    """Corpus JSONL (the stdlib once, and repeated ``k`` times per scale) and a 16k tokenizer, cached."""
    cache.mkdir(parents=True, exist_ok=True)
    corpora = {k: cache / ("stdlib.jsonl" if k == 1 else f"stdlib-x{k}.jsonl") for k in {1, *scales}}
    tok_dir = cache / "tokenizer-16k"
    if not all(p.exists() for p in corpora.values()):
        lines = "".join(
            json.dumps({"text": t, "path": p, "source": "stdlib"}) + "\n" for p, t in stdlib_texts()
        )
        for k, path in corpora.items():
            path.write_text(lines * k, encoding="utf-8")
    if not (tok_dir / "tokenizer.json").exists():
        from gitnetic.data.jsonl import iter_jsonl_texts
        from gitnetic.data.tokenizer.params import TokenizerParams
        from gitnetic.data.tokenizer.train import train_tokenizer

        t = time.perf_counter()
        train_tokenizer(iter_jsonl_texts(corpora[1]), tok_dir, TokenizerParams(vocab_size=16384))
        print(f"(trained the 16k tokenizer once in {time.perf_counter() - t:.1f}s, cached in {tok_dir})")
    return corpora, tok_dir


def run_raw(tok_dir: Path, texts: list[str], workers: int) -> tuple[float, int, str]:
    encoder = build_encoder(load_backend_tokenizer(tok_dir), "auto", num_threads=workers)
    t = time.perf_counter()
    ids = encoder.encode_batch(texts)
    secs = time.perf_counter() - t
    return secs, sum(len(x) for x in ids), encoder.name


def run_preprocess(tok_dir: Path, corpus: Path, prefix: Path, encoder: str, workers: int) -> float:
    params = pp.PreprocessParams(
        tokenizer_path=str(tok_dir),
        input=str(corpus),
        output_prefix=str(prefix),
        encoder=encoder,
        workers=workers,
    )
    t = time.perf_counter()
    stats = pp.preprocess(params)
    wall = time.perf_counter() - t
    run_preprocess.binarize_seconds = sum(s.seconds for s in stats)  # read + encode + write, no set-up
    return wall


def run_megatron(tok_dir: Path, corpus: Path, prefix: Path) -> float:
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from megatron.core.datasets.indexed_dataset import IndexedDatasetBuilder

    t = time.perf_counter()
    tok = load_backend_tokenizer(tok_dir)
    tok.encode_special_tokens = True  # same ids as the others (literal "</s>" stays text)
    eos = tok.token_to_id("</s>")
    builder = IndexedDatasetBuilder(str(prefix) + ".bin", dtype=np.uint16)
    with open(corpus, encoding="utf-8") as fh:
        for line in fh:
            ids = tok.encode(json.loads(line)["text"], add_special_tokens=False).ids
            ids.append(eos)
            builder.add_item(torch.tensor(ids, dtype=torch.int64))
            builder.end_document()
    builder.finalize(str(prefix) + ".idx")
    return time.perf_counter() - t


def run_cli(tok_dir: Path, corpus: Path, prefix: Path, workers: int) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``python -m gitnetic preprocess`` as its own process.

    Peak RSS is the child's own ``VmHWM`` (polled from /proc until it exits): ``ru_maxrss`` of a child
    also counts the memory of this (large) parent at fork time, so it would overstate the CLI's use.
    """
    cmd = [sys.executable, "-m", "gitnetic", "preprocess", "--tokenizer_path", str(tok_dir), "--input",
           str(corpus), "--output_prefix", str(prefix), "--workers", str(workers)]  # fmt: skip
    t = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak_kb = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kb = int(line.split()[1])  # monotonic after exec: the last read is the peak
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    secs = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"preprocess failed: {proc.stderr.read().decode()}")
    return secs, peak_kb / 1024


def cpu_seconds() -> float:
    """User + system CPU of this process, all threads (robust to a busy machine, unlike wall time)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def same_tokens(a: Path, b: Path) -> bool:
    x, y = IndexedDataset(a), IndexedDataset(b)
    return np.array_equal(x.sizes, y.sizes) and (
        Path(f"{a}.bin").read_bytes() == Path(f"{b}.bin").read_bytes()
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--cache_dir", default="/tmp/gitnetic-bench")
    ap.add_argument("--workers", type=int, default=0, help="threads; 0 = all CPUs this process may use")
    ap.add_argument(
        "--rss_scales", type=int, nargs="+", default=[1, 4, 8], help="corpus repeats for peak RSS"
    )
    args = ap.parse_args()
    workers = args.workers or available_cpus()
    cache = Path(args.cache_dir)
    corpora, tok_dir = prepare(cache, args.rss_scales)
    corpus = corpora[1]
    out = cache / "out"
    out.mkdir(exist_ok=True)
    texts = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8")]
    mb = corpus.stat().st_size / 1e6
    print(f"corpus: {len(texts)} stdlib files, {mb:.1f} MB JSONL; 16k byte-level BPE; {workers} thread(s); "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip

    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    tokens, name = 0, ""
    for r in range(args.repeats):
        timings, cpu = {}, {}
        c = cpu_seconds()
        timings["raw"], tokens, name = run_raw(tok_dir, texts, workers)
        cpu["raw"], c = cpu_seconds() - c, cpu_seconds()
        timings["gitnetic"] = run_preprocess(tok_dir, corpus, out / "gitnetic", "auto", workers)
        cpu["gitnetic"], c = cpu_seconds() - c, cpu_seconds()
        timings["phase"], cpu["phase"] = run_preprocess.binarize_seconds, float("nan")
        if r < max(1, args.repeats - 1):  # the slow baselines: fewer repeats
            timings["hf"] = run_preprocess(tok_dir, corpus, out / "hf", "hf", workers)
            cpu["hf"], c = cpu_seconds() - c, cpu_seconds()
        if r == 0:
            timings["megatron"] = run_megatron(tok_dir, corpus, out / "megatron")
            cpu["megatron"] = cpu_seconds() - c
        for k, v in timings.items():
            best[k] = min(best.get(k, float("inf")), v)
            best_cpu[k] = min(best_cpu.get(k, float("inf")), cpu[k]) if cpu[k] == cpu[k] else cpu[k]
        print(f"  run {r + 1}: " + ", ".join(f"{k} {tokens / v / 1e6:.2f}" for k, v in timings.items()) + " Mtok/s",
              flush=True)  # fmt: skip
    ntok = IndexedDataset(out / "gitnetic").num_tokens  # includes one </s> per document
    assert same_tokens(out / "gitnetic", out / "hf"), "tiktoken path and HF path differ"
    assert same_tokens(out / "gitnetic", out / "megatron"), "gitnetic and the Megatron-style loop differ"

    rows = []
    for key, label in [
        ("raw", f"fastest exact encoder alone ({name}, in memory) = the limit"),
        ("gitnetic", "gitnetic preprocess end to end (in-process)"),
        ("phase", "… of which the binarize phase (read + encode + write, no set-up)"),
        ("hf", "HF encode_batch + writing (preprocess --encoder hf)"),
        ("megatron", "Megatron-style loop (per-doc encode + megatron-core builder)"),
    ]:
        secs = best[key]
        n = tokens if key == "raw" else ntok
        rate = n / secs / 1e6
        hf_rate, raw_rate = ntok / best["hf"] / 1e6, tokens / best["raw"] / 1e6
        rows.append((label, secs, rate, rate / hf_rate, rate / raw_rate, best_cpu[key]))
    print()
    print("| path | wall s | Mtok/s | × HF path | × raw limit | CPU s (all threads) |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, secs, rate, vs_hf, vs_raw, cpu_s in rows:
        cpu_txt = f"{cpu_s:.2f}" if cpu_s == cpu_s else "–"
        print(f"| {label} | {secs:.2f} | {rate:.2f} | {vs_hf:.2f} | {vs_raw:.2f} | {cpu_txt} |")
    print()
    print(
        "| `python -m gitnetic preprocess` (subprocess) | tokens | wall s (incl. start-up) | Mtok/s | peak RSS MiB |"
    )
    print("|---|---:|---:|---:|---:|")
    for k in args.rss_scales:
        wall, rss = run_cli(tok_dir, corpora[k], out / f"cli{k}", workers)
        n = IndexedDataset(out / f"cli{k}").num_tokens
        what = "stdlib corpus (1×)" if k == 1 else f"same docs repeated {k}×"
        print(f"| {what} | {n:,} | {wall:.2f} | {n / wall / 1e6:.2f} | {rss:.0f} |", flush=True)


if __name__ == "__main__":
    main()
