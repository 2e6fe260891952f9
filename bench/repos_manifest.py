"""A manifest of many repositories (issue 30): the corpus stage on ``--repos`` small local bare
repositories as one ``type: repos`` source, against the same repositories as one ``type: git`` source
each in ``sources:``.

The repositories are built from real code: the project venv's ``site-packages`` ``.py`` files, sorted,
cut into consecutive slices of about ``--repo_kb`` KB (files over 200 KB left out), each committed with
an MIT ``LICENSE`` into a work tree and cloned bare; the manifest names half of them by path and half
by ``file://`` URL. Built once in the work folder, deleted at the end (``--keep`` keeps it).

Every run is the real CLI as a subprocess, ``python -m gitnetic corpus --config params.yaml:corpus``,
with default cleaning and workers, a fresh ``out_dir`` each time:

* manifest, cold cache: fetches every repository into ``cache_dir`` (bare, shallow) and reads it;
* manifest, warm cache: the rerun, which fetches nothing;
* 200 ``git`` sources: reads each repository in place (no fetch, no cache).

Both ways must keep the same number of documents (asserted: the same files, in the same order). Run
(repository root): ``.venv/bin/python bench/repos_manifest.py`` (``--help`` for options); it prints a
Markdown table with the ratios to the ``git`` sources run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
MIT = (REPO / "gitnetic" / "data" / "corpus" / "redact" / "gitleaks" / "LICENSE").read_text()
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.com", "-c", "init.defaultBranch=main"]
GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00",
}


def slices(root: Path, count: int, target: int) -> list[list[Path]]:
    """``count`` runs of consecutive ``.py`` files of ``root``, about ``target`` bytes each."""
    files = sorted(p for p in root.rglob("*.py") if p.is_file() and p.stat().st_size <= 200_000)
    out: list[list[Path]] = [[]]
    size = 0
    for path in files:
        if len(out) > count:
            break
        out[-1].append(path)
        size += path.stat().st_size
        if size >= target:
            out.append([])
            size = 0
    if len(out) <= count or not out[count - 1]:
        raise SystemExit(f"{root} holds too little code for {count} repositories of {target} bytes")
    return out[:count]


def build(work: Path, site: Path, count: int, target: int) -> tuple[list[Path], int]:
    """Bare repositories ``work/bare/rNNN.git``; returns them and their total ``.py`` bytes."""
    bare_dir = work / "bare"
    bare_dir.mkdir(parents=True)
    repos, total = [], 0
    for i, files in enumerate(slices(site, count, target)):
        tree = work / "tree" / f"r{i:03d}"
        for src in files:
            dst = tree / src.relative_to(site)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            total += src.stat().st_size
        (tree / "LICENSE").write_text(MIT)
        for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", f"slice {i}"]):
            subprocess.run([*GIT, "-C", str(tree), *args], check=True, env=GIT_ENV, capture_output=True)
        bare = bare_dir / f"r{i:03d}.git"
        subprocess.run([*GIT, "clone", "-q", "--bare", str(tree), str(bare)], check=True, capture_output=True)
        shutil.rmtree(tree)
        repos.append(bare)
    return repos, total


def run_corpus(work: Path, name: str, sources: list[dict]) -> tuple[float, dict]:
    """One CLI run on ``sources``; returns its wall time and stats.json."""
    out = work / "out" / name
    shutil.rmtree(out, ignore_errors=True)
    params = work / f"{name}.yaml"
    params.write_text(yaml.safe_dump({"corpus": {"sources": sources, "out_dir": str(out)}}, sort_keys=False))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "gitnetic", "corpus", "--config", f"{params}:corpus"],
        cwd=work,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads((out / "stats.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--repo_kb", type=int, default=64, help="about this many KB of .py per repository")
    parser.add_argument("--site", type=Path, default=REPO / ".venv" / "lib" / "python3.11" / "site-packages")
    parser.add_argument("--work", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--repeats", type=int, default=2, help="rounds of the three runs; best wall shown")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="repos-manifest-"))
    try:
        started = time.perf_counter()
        repos, total = build(work, args.site.resolve(), args.repos, args.repo_kb * 1000)
        print(
            f"built {len(repos)} bare repositories, {total / 1e6:.1f} MB of .py, in "
            f"{time.perf_counter() - started:.1f} s ({work})"
        )
        manifest = work / "repos.txt"
        manifest.write_text("".join(f"{'file://' if i % 2 else ''}{repo}\n" for i, repo in enumerate(repos)))
        repos_source = [
            {"name": "org", "type": "repos", "manifest": str(manifest), "cache_dir": str(work / "cache")}
        ]
        git_sources = [{"name": repo.stem, "type": "git", "path": str(repo)} for repo in repos]
        runs = (
            (f"{len(repos)} git sources", git_sources),
            ("manifest, cold cache (fetch + read)", repos_source),
            ("manifest, warm cache (read)", repos_source),
        )
        walls: dict[str, list[float]] = {name: [] for name, _ in runs}
        docs = set()
        for _ in range(args.repeats):  # interleaved, so that load changes hit every run alike
            shutil.rmtree(work / "cache", ignore_errors=True)
            for i, (name, sources) in enumerate(runs):
                wall, stats = run_corpus(work, f"run{i}", sources)
                walls[name].append(wall)
                docs.add(stats["documents"]["total"])
        assert len(docs) == 1, f"the runs kept different numbers of documents: {docs}"
        best = {name: min(w) for name, w in walls.items()}
        base = best[runs[0][0]]
        print(f"\n{len(repos)} repositories, {total / 1e6:.1f} MB of .py, {docs.pop()} documents kept\n")
        print("| run | wall s (best) | all runs | × git sources | MB/s (input) |")
        print("|---|---:|---|---:|---:|")
        for name, wall in best.items():
            every = ", ".join(f"{w:.1f}" for w in walls[name])
            print(f"| {name} | {wall:.2f} | {every} | {wall / base:.2f} | {total / 1e6 / wall:.1f} |")
        fetch = best[runs[1][0]] - best[runs[2][0]]
        print(f"\nfetch (cold - warm): {fetch:.1f} s, {fetch / len(repos) * 1000:.0f} ms per repository")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
