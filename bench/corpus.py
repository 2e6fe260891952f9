"""Corpus stage: throughput with and without near-dedup, near-dedup recall/precision, rensa vs datasketch,
and peak RSS as the corpus grows 4x.

Workload: the stdlib's ``.py`` files (up to ``--base_mb``), minus the ones that are already near-copies
of each other (so the planted ones are the only positives), written ``--repeats`` times with every
identifier suffixed by the repeat number (distinct copies: no shared word 5-grams), plus, for
``--plant`` of the files in each repeat, a planted near-copy (a few lines changed, one identifier
renamed in one place, whitespace re-indented). Ground truth: a planted copy is a positive when the
exact Jaccard similarity of its 5-gram shingle set with its original reaches the threshold.

Each configuration runs ``collect_corpus`` in a fresh subprocess, so its peak RSS is its own.
Run: ``python bench/corpus.py`` (prints a Markdown table; nothing is asserted).
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

IDENT = re.compile(r"\b([A-Za-z_]\w*)\b")


def run_one(config: dict) -> dict:
    from gitnetic.data.corpus import CorpusParams, collect_corpus

    t0 = time.perf_counter()
    stats = collect_corpus(CorpusParams(**config))
    wall = time.perf_counter() - t0
    kept = set()
    for split in ("train", "valid", "test"):
        with open(Path(config["out_dir"]) / f"{split}.jsonl", encoding="utf-8") as fh:
            for line in fh:
                kept.add(json.loads(line)["path"])
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "wall_s": wall,
        "docs": stats.total_documents,
        "kept": sorted(kept),
        "peak_rss_mb": peak,
        "near_duplicate": stats.skipped["near_duplicate"],
        "duplicate": stats.skipped["duplicate"],
    }


def measure(config: dict) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--_run", json.dumps(config)], capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shingle_set(text: str) -> set[str]:
    from gitnetic.data.neardup import shingles

    return shingles(text, 5)


def plant(text: str, rng: random.Random) -> str:
    lines = text.split("\n")
    for i in rng.sample(range(len(lines)), k=min(3, len(lines))):
        lines[i] = lines[i] + "  # edited"
    out = "\n".join(lines).replace("    ", "\t")
    names = sorted(set(IDENT.findall(out)))
    if names:
        name = rng.choice(names)
        out = re.sub(rf"\b{re.escape(name)}\b", name + "_renamed", out, count=1)
    return out


def build(
    root: Path, base: dict[str, str], repeats: int, plant_frac: float, seed: int = 0
) -> tuple[int, int, list[str]]:
    """Write the workload; return (files, bytes, planted positive paths)."""
    rng = random.Random(seed)
    files = nbytes = 0
    positives: list[str] = []
    for r in range(repeats):
        for rel, text in base.items():
            copy = IDENT.sub(rf"\1_{r}", text) if r else text
            path = root / f"r{r}" / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(copy)
            files, nbytes = files + 1, nbytes + len(copy.encode())
            if rng.random() < plant_frac:
                near = plant(copy, rng)
                near_path = root / f"r{r}" / "zz_planted" / rel
                near_path.parent.mkdir(parents=True, exist_ok=True)
                near_path.write_text(near)
                files, nbytes = files + 1, nbytes + len(near.encode())
                a, b = shingle_set(copy), shingle_set(near)
                if len(a & b) / len(a | b) >= 0.85:
                    positives.append(f"r{r}/zz_planted/{rel}")
    return files, nbytes, positives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base_mb", type=float, default=4.0)
    parser.add_argument("--plant", type=float, default=0.1)
    parser.add_argument("--_run", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._run:
        print(json.dumps(run_one(json.loads(args._run))))
        return

    from gitnetic.data.neardup import NearDuplicateIndex
    from gitnetic.data.sources.stdlib import stdlib_root

    root = stdlib_root()
    base: dict[str, str] = {}
    total = 0
    index = NearDuplicateIndex()
    natural = 0
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if rel.startswith(("site-packages/", "test/", "idlelib/", "lib2to3/")) or "/tests/" in rel:
            continue
        try:
            text = path.read_text("utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if not text.strip() or len(text) > 200_000:
            continue
        if index.add_or_match(text) is not None:
            natural += 1  # already a near-copy of an earlier stdlib file: not part of the workload
            continue
        base[rel] = text
        total += len(text.encode())
        if total > args.base_mb * 1e6:
            break
    print(
        f"base: {len(base)} stdlib files, {total / 1e6:.1f} MB ({natural} natural near-copies left out)",
        file=sys.stderr,
    )

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeats in (1, 4):
            src = Path(tmp) / f"src{repeats}"
            files, nbytes, positives = build(src, base, repeats, args.plant)
            configs = [("no near-dedup", {"near_dedup": False})]
            configs += [(f"near-dedup {lib}", {"near_dedup_library": lib}) for lib in ("rensa", "datasketch")]
            for name, extra in configs:
                if repeats == 4 and "datasketch" in name:
                    continue
                config = {
                    "source": "dir",
                    "path": str(src),
                    "max_bytes": 0,
                    "max_file_bytes": 0,
                    "out_dir": str(Path(tmp) / "out"),
                    **extra,
                }
                res = measure(config)
                kept = set(res["kept"])
                planted_rel = {p.relative_to(src).as_posix() for p in src.glob("r*/zz_planted/**/*.py")}
                dropped = {p.relative_to(src).as_posix() for p in src.rglob("*.py")} - kept
                pos = set(positives)
                tp = len(dropped & pos)
                rows.append(
                    {
                        "config": name,
                        "repeats": repeats,
                        "files": files,
                        "MB": nbytes / 1e6,
                        "files_s": files / res["wall_s"],
                        "MB_s": nbytes / 1e6 / res["wall_s"],
                        "wall_s": res["wall_s"],
                        "recall": tp / len(pos) if pos and res["near_duplicate"] else None,
                        "precision": tp / len(dropped) if dropped and res["near_duplicate"] else None,
                        "dropped": len(dropped),
                        "positives": len(pos),
                        "planted": len(planted_rel),
                        "peak_rss_mb": res["peak_rss_mb"],
                    }
                )
                print(json.dumps(rows[-1]), file=sys.stderr)
    base_rows = {r["repeats"]: r for r in rows if r["config"] == "no near-dedup"}
    print(
        "| config | corpus | files | MB | wall s | files/s | MB/s | x no-dedup time | recall | precision | peak RSS MB |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        ratio = r["wall_s"] / base_rows[r["repeats"]]["wall_s"]
        fmt = lambda v: "–" if v is None else f"{v:.3f}"  # noqa: E731
        print(
            f"| {r['config']} | {r['repeats']}x | {r['files']} | {r['MB']:.1f} | {r['wall_s']:.2f} | {r['files_s']:.0f} | "
            f"{r['MB_s']:.2f} | {ratio:.2f} | {fmt(r['recall'])} | {fmt(r['precision'])} | {r['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
