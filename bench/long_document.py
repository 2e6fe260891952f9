"""Preprocess of one huge document vs the same bytes as ~3,000 documents: wall time and peak RSS.

Not a test (timings never go in tests). A corpus built with ``--max_file_bytes 0`` or a dataset row can
hold one document of tens of MB; encoding it in one call made ``preprocess`` take 12.5 GB (issue 29).
This bench concatenates this Python's ``site-packages`` ``.py`` files (sorted by path) up to ``--mb``
MB into **one** JSONL line, and the same text into ``--docs`` documents of about equal size, cut at line
ends (their texts joined are exactly the one document's text). It trains (once, cached) an 8k
byte-level BPE on a 3 MB sample with gitnetic's own trainer, then runs the real CLI on each corpus::

    /usr/bin/time -f '%e %M' python -m gitnetic preprocess --tokenizer_path TOK --input X.jsonl \\
        --output_prefix OUT --encoder {auto,hf}

and prints wall seconds, peak RSS (GNU time's ``%M``: the preprocess process's own high-water mark) and
the one-document / many-documents ratios, plus each output's sha256: run it once with ``--repo`` set to
an older checkout and compare the hashes to check that the shards are byte-identical.

Usage (nice: the machine is shared)::

    nice -n 10 .venv/bin/python bench/long_document.py [--mb 50] [--docs 3000] [--encoders auto hf]
        [--cache_dir /tmp/gitnetic-long-docs] [--repo .]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def source_files(limit_bytes: int) -> list[str]:
    """Texts of the sorted site-packages ``.py`` files, up to ``limit_bytes`` UTF-8 bytes in all."""
    root = Path(sysconfig.get_paths()["purelib"])
    texts, total = [], 0
    for path in sorted(root.rglob("*.py")):
        try:
            text = path.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(text)
        total += len(text.encode("utf-8"))
        if total >= limit_bytes:
            break
    return texts


def write_corpora(cache: Path, mb: float, docs: int) -> tuple[Path, Path, int]:
    """``one.jsonl`` (one document) and ``many.jsonl`` (``docs`` documents) of the same text; cached."""
    one, many = cache / f"one-{mb:g}mb.jsonl", cache / f"many-{mb:g}mb-{docs}.jsonl"
    if not (one.exists() and many.exists()):
        whole = "".join(source_files(int(mb * 1e6)))
        # cut at the first line end after each k/docs of the text: the parts join to exactly ``whole``
        cuts = [0]
        for k in range(1, docs):
            end = whole.find("\n", max(cuts[-1], len(whole) * k // docs)) + 1
            if 0 < end < len(whole):
                cuts.append(end)
        cuts.append(len(whole))
        parts = [whole[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a]
        assert "".join(parts) == whole
        record = {"path": "site-packages.py", "source": "site-packages"}
        one.write_text(json.dumps({"text": whole, **record}) + "\n", encoding="utf-8")
        with many.open("w", encoding="utf-8") as fh:
            for i, part in enumerate(parts):
                fh.write(json.dumps({"text": part, "path": f"part{i}.py", "source": "site-packages"}) + "\n")
    count = sum(1 for _ in many.open("rb"))
    return one, many, count


def tokenizer(cache: Path) -> Path:
    """An 8k byte-level BPE from gitnetic's own trainer on a 3 MB sample (trained once, cached)."""
    out = cache / "tokenizer-8k"
    if not (out / "tokenizer.json").exists():
        sys.path.insert(0, str(REPO))
        from gitnetic.data.tokenizer.train import TokenizerParams, train_tokenizer

        train_tokenizer(source_files(3_000_000), out, TokenizerParams(vocab_size=8000))
    return out


def run(repo: Path, tok: Path, corpus: Path, prefix: Path, encoder: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS MiB and the last stdout line of ``python -m gitnetic preprocess``."""
    stats = prefix.with_suffix(".time")
    cmd = ["/usr/bin/time", "-o", str(stats), "-f", "%e %M", sys.executable, "-m", "gitnetic", "preprocess",
           "--tokenizer_path", str(tok), "--input", str(corpus), "--output_prefix", str(prefix),
           "--encoder", encoder]  # fmt: skip
    env = dict(os.environ, PYTHONPATH=str(repo))  # that checkout's gitnetic, not the installed one
    proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"preprocess failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    wall, kb = stats.read_text().split()[-2:]
    return float(wall), int(kb) / 1024, proc.stdout.strip().splitlines()[-1]


def sha256(prefix: Path) -> str:
    digest = hashlib.sha256()
    for suffix in (".bin", ".idx"):
        digest.update(prefix.with_suffix(suffix).read_bytes())
    return digest.hexdigest()[:16]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="MB of source text (UTF-8)")
    ap.add_argument("--docs", type=int, default=3000, help="documents of the split corpus")
    ap.add_argument("--encoders", nargs="+", default=["auto", "hf"], choices=["auto", "tiktoken", "hf"])
    ap.add_argument("--cache_dir", default="/tmp/gitnetic-long-docs")
    ap.add_argument("--repo", default=str(REPO), help="checkout whose gitnetic runs (e.g. an older one)")
    args = ap.parse_args()
    cache = Path(args.cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    one, many, count = write_corpora(cache, args.mb, args.docs)
    tok = tokenizer(cache)
    repo = Path(args.repo).resolve()
    commit = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    print(f"corpora ready in {time.perf_counter() - t:.1f}s: {one.name} {one.stat().st_size / 1e6:.1f} MB "
          f"(1 document), {many.name} ({count} documents); gitnetic at {repo} {commit}; "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    out = cache / f"out-{commit or repo.name}"
    out.mkdir(exist_ok=True)
    print("| corpus | encoder | documents | wall s | peak RSS MiB | shards sha256 | preprocess says |")
    print("|---|---|---:|---:|---:|---|---|")
    for encoder in args.encoders:
        results = {}
        for label, corpus, docs in (("one", one, 1), ("many", many, count)):
            prefix = out / f"{label}-{encoder}"
            wall, rss, said = run(repo, tok, corpus, prefix, encoder)
            results[label] = wall, rss
            print(f"| {label} | {encoder} | {docs} | {wall:.1f} | {rss:.0f} | {sha256(prefix)} | "
                  f"{said.split(' -> ')[0].split(': ', 1)[-1]} |", flush=True)  # fmt: skip
        (w1, r1), (wn, rn) = results["one"], results["many"]
        print(f"| one / many | {encoder} | | {w1 / wn:.2f}x | {r1 / rn:.2f}x | | |", flush=True)


if __name__ == "__main__":
    main()
