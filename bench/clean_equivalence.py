"""Per-document cleaning: the current code against a baseline revision, document by document.

For every document of a real corpus (default: this venv's ``site-packages``, ~18k files, ~300 MB, the
corpus of issue 22) that the corpus stage would read (same binary/UTF-8/empty checks), this runs the
baseline's and the current ``QualityFilter.reason``, ``Decontaminator.contaminated``, ``Redactor.redact``
and near-dedup's shingling and signing side by side and checks that they give **identical** results
(filter reason, benchmark, redacted text and counts, shingle set). Signatures differ by design since the
shingles are hashed in NumPy (gitnetic/data/corpus/neardup/shingle_hash.py): for them it checks that the shingle
hashes have no collision (as many distinct hashes as distinct shingle strings). Redaction
and decontamination run on every readable document (not only those the filters keep: a stronger check);
MinHash runs on the redacted text, as in the stage.

It prints each step's CPU seconds (``time.process_time``) for the baseline and the current code and their
ratio, plus the bare read path (read + UTF-8 decode) the issue's goal compares with. Old and new run
alternately on the same document, so machine load hits both alike. Exits 1 on any difference.

The baseline is the cleaning modules (secret rules, generic secrets, redactor, filters, near-dedup and its
shingle hashes, decontamination) at ``--rev`` (default ``main``), loaded from git as a separate package,
from either layout: ``gitnetic/data/corpus/...`` or the flat ``gitnetic/data/*.py`` of before the move.

With ``--stage`` it instead runs the whole corpus stage (``gitnetic corpus --source dir --path DIR
--max_bytes 0``, defaults otherwise) with the baseline's package and the current one, one after the
other, prints wall/CPU seconds and peak RSS of each, and checks the outputs are byte-identical.

Run: ``python bench/clean_equivalence.py [--rev main] [--path DIR] [--limit N] [--stage]``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.git_baseline import git_exists, git_show  # noqa: E402
from gitnetic.data.corpus import decontaminate, filters  # noqa: E402
from gitnetic.data.corpus.clean import BINARY_SNIFF_BYTES  # noqa: E402
from gitnetic.data.corpus.neardup import index as neardup  # noqa: E402
from gitnetic.data.corpus.redact import redactor as redact  # noqa: E402
from gitnetic.data.corpus.sources import open_source  # noqa: E402
from gitnetic.data.corpus.sources.params import SourceParams  # noqa: E402
from gitnetic.data.problems import read_problems  # noqa: E402
from tests.secret_samples import placeholders, planted  # noqa: E402

# Each baseline module's name here -> its module under gitnetic.data, in today's layout and before the move.
MODULES = {
    "secret_rules": ("corpus.redact.rules", "secret_rules"),
    "generic_secrets": ("corpus.redact.generic", "generic_secrets"),
    "redact": ("corpus.redact.redactor", "redact"),
    "filters": ("corpus.filters", "filters"),
    "shingle_hash": ("corpus.neardup.shingle_hash", "shingle_hash"),
    "neardup": ("corpus.neardup.index", "neardup"),
    "decontaminate": ("corpus.decontaminate", "decontaminate"),
}
BASE_PACKAGE = "_clean_baseline"
STAGE_SPLITS = ("train.jsonl", "valid.jsonl", "test.jsonl")
STEPS = ("read", "quality", "decontaminate", "redact", "neardup signing")


def load_baseline(rev: str) -> dict[str, object]:
    """The modules of :data:`MODULES` at ``rev``, importable side by side with the current ones."""
    root = Path(tempfile.mkdtemp(prefix="clean-baseline-"))
    package = root / BASE_PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "gitleaks").symlink_to(REPO / "gitnetic" / "data" / "corpus" / "redact" / "gitleaks")
    moved = git_exists(rev, "gitnetic/data/corpus/stage.py")
    loaded = []
    for name, (new, old) in MODULES.items():
        dotted = new if moved else old
        if not git_exists(rev, f"gitnetic/data/{dotted.replace('.', '/')}.py"):
            continue  # shingle_hash.py is younger than the other modules
        source = git_show(rev, f"gitnetic/data/{dotted.replace('.', '/')}.py")
        for other, (other_new, other_old) in MODULES.items():
            source = re.sub(
                rf"\bgitnetic\.data\.{re.escape(other_new if moved else other_old)}\b",
                f"{BASE_PACKAGE}.{other}",
                source,
            )
        (package / f"{name}.py").write_text(source)
        loaded.append(name)
    sys.path.insert(0, str(root))
    return {name: importlib.import_module(f"{BASE_PACKAGE}.{name}") for name in loaded}


def documents(path: str, limit: int):
    """``(path, text, read CPU seconds)`` of each document the corpus stage would read."""
    with open_source(SourceParams(name="bench", type="dir", path=path)) as opened:
        n = 0
        for cand in opened.candidates:
            t0 = time.process_time()
            try:
                data = cand.read()
            except OSError:
                continue
            if b"\0" in data[:BINARY_SNIFF_BYTES]:
                continue
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                continue
            if not text.strip():
                continue
            yield cand.fields.get("path"), text, time.process_time() - t0
            n += 1
            if limit and n >= limit:
                return


def planted_documents() -> list[str]:
    """Documents the corpus rarely has: every planted secret format in every context (at the start of a
    document, after 300 characters of code, and all in one document), placeholders, and HumanEval
    solutions inside code (ASCII, non-ASCII, and with a separator character only str.split() splits at)."""
    secrets = [doc.text for seed in (0, 1) for doc in planted(seed, per_pair=2)]
    docs = [*secrets, *(("x = 1  # pad\n" * 25) + t + "\ny = 2\n" for t in secrets), "\n".join(secrets)]
    docs += [f"# café — 日本語\n{t}" for t in secrets[::3]] + [f"# İ \u212a\n{t}" for t in secrets[1::3]]
    docs += [text for _, text in placeholders()]
    docs.append(
        "@property\n# mail ann.lee+x@mail.example.org or a@b, x @ y, (@c.de), 9@9.io, @x.com\nk = A @ B"
    )
    for problem in read_problems("humaneval")[:40]:
        body = problem.prompt + problem.canonical_solution
        docs += [f"import os\n\n{body}\n", f"# café\n{body}", f"x = 1\x1c\n{body}", f"é\u00a0{body}"]
    return docs


class Timed:
    """CPU seconds per (step, side)."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], float] = {}

    def __call__(self, step: str, side: str, fn, *args):
        t0 = time.process_time()
        out = fn(*args)
        key = (step, side)
        self.seconds[key] = self.seconds.get(key, 0.0) + time.process_time() - t0
        return out


def _minhash_both(old_near, new_near, old_shingles, text: str, timed: Timed) -> list[str]:
    """Shingles, baseline vs current, and the current shingle hashes' collisions; the list of what
    differs. Signing is timed per document on both sides (the stage now signs a batch at once, which
    is cheaper still)."""
    timed("neardup signing", "old", old_near.hasher.sign, text)
    timed("neardup signing", "new", new_near.hasher.sign, text)
    old_items = old_shingles(text, old_near.ngram)
    problems = []
    if old_items != neardup.shingles(text, new_near.ngram):
        problems.append("shingles")
    if new_near.hasher.shingler.hash_set(text.encode("utf-8")).size != len(old_items):
        problems.append("shingle hash collision")
    return problems


def compare(path: str, limit: int, rev: str) -> tuple[Timed, int, int, float, list[str]]:
    base = load_baseline(rev)
    old = {
        "quality": base["filters"].QualityFilter(),
        "decontaminate": base["decontaminate"].Decontaminator(["humaneval"]),
        "redact": base["redact"].Redactor(),
        "neardup": base["neardup"].NearDuplicateIndex(),
    }
    new = {
        "quality": filters.QualityFilter(),
        "decontaminate": decontaminate.Decontaminator(["humaneval"]),
        "redact": redact.Redactor(),
        "neardup": neardup.NearDuplicateIndex(),
    }
    timed, diffs, docs, size = Timed(), [], 0, 0
    for doc_path, text, read_s in documents(path, limit):
        docs += 1
        size += len(text)
        timed.seconds[("read", "old")] = timed.seconds.get(("read", "old"), 0.0) + read_s
        for step, method in (("quality", "reason"), ("decontaminate", "contaminated")):
            args = (text, doc_path) if step == "quality" else (text,)
            a = timed(step, "old", getattr(old[step], method), *args)
            b = timed(step, "new", getattr(new[step], method), *args)
            if a != b:
                diffs.append(f"{doc_path}: {step} {a!r} != {b!r}")
        a = timed("redact", "old", old["redact"].redact, text)
        b = timed("redact", "new", new["redact"].redact, text)
        if a != b:
            diffs.append(f"{doc_path}: redact differs (counts {a[1]} vs {b[1]})")
        for problem in _minhash_both(old["neardup"], new["neardup"], base["neardup"].shingles, a[0], timed):
            diffs.append(f"{doc_path}: {problem} differ")
    planted_docs = planted_documents()
    redacted = contaminated = 0
    for text in planted_docs:  # equality only; not timed
        a, b = old["redact"].redact(text), new["redact"].redact(text)
        redacted += bool(b[1])
        if a != b:
            diffs.append(f"planted document: redact differs (counts {a[1]} vs {b[1]}): {text[:60]!r}")
        a, b = old["decontaminate"].contaminated(text), new["decontaminate"].contaminated(text)
        contaminated += b is not None
        if a != b:
            diffs.append(f"planted document: decontaminate {a!r} != {b!r}: {text[:60]!r}")
    print(f"{len(planted_docs)} planted documents: {redacted} redacted, {contaminated} contaminated")
    return timed, docs, size, time.process_time(), diffs


def _run_stage(pythonpath: str, path: str, out: Path) -> tuple[float, float, float]:
    """``(wall s, CPU s, peak RSS MB)`` of one ``gitnetic corpus`` run on ``path`` in a child process."""
    command = [sys.executable, "-m", "gitnetic", "corpus", "--source", "dir", "--path", path]
    env = {**os.environ, "PYTHONPATH": pythonpath, "TQDM_DISABLE": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import gitnetic; print(gitnetic.__file__)"],
        env=env, cwd=out.parent, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    if not where.startswith(f"{pythonpath}/"):  # the run must import the package it is meant to measure
        raise SystemExit(f"gitnetic would be imported from {where.strip()}, not from {pythonpath}")
    start = time.perf_counter()
    with (out.parent / f"{out.name}.log").open("w") as log:
        child = subprocess.Popen(
            [*command, "--max_bytes", "0", "--out_dir", str(out)],
            env=env,
            stdout=log,
            stderr=log,
            cwd=out.parent,  # not the repository: "python -m" puts the working directory first on the path
        )
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"the corpus stage failed under PYTHONPATH={pythonpath}; see {log.name}")
    return time.perf_counter() - start, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def compare_stage(path: str, rev: str) -> bool:
    """The whole corpus stage (defaults: filters, decontamination, redaction, near-dedup) with the
    baseline's ``gitnetic`` package and with the current one, one after the other: its outputs must be
    byte-identical (``stats.json`` apart from ``out_dir``)."""
    work = Path(tempfile.mkdtemp(prefix="clean-stage-"))
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", rev, "gitnetic"], check=True, capture_output=True
    )
    (work / "baseline").mkdir()  # the package apart from the runs' working directory (work)
    subprocess.run(["tar", "-x", "-C", str(work / "baseline")], input=archive.stdout, check=True)
    figures = {
        side: _run_stage(src, path, work / side)
        for side, src in (("old", str(work / "baseline")), ("new", str(REPO)))
    }
    same = all((work / "old" / f).read_bytes() == (work / "new" / f).read_bytes() for f in STAGE_SPLITS)
    old_stats, new_stats = (json.loads((work / side / "stats.json").read_text()) for side in ("old", "new"))
    same = same and {**old_stats, "out_dir": ""} == {**new_stats, "out_dir": ""}
    print("| corpus stage | wall s | CPU s | peak RSS MB |\n|---|---:|---:|---:|")
    for side, (wall, cpu, rss) in figures.items():
        print(f"| {'baseline ' + rev if side == 'old' else 'current'} | {wall:.1f} | {cpu:.1f} | {rss:.0f} |")
    print(f"| **baseline / current** | {figures['old'][0] / figures['new'][0]:.2f} | "
          f"{figures['old'][1] / figures['new'][1]:.2f} | |")  # fmt: skip
    print(f"\noutputs {'byte-identical' if same else 'DIFFER'} ({', '.join(STAGE_SPLITS)}, stats.json)")
    if same:
        shutil.rmtree(work)
    return same


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default = next(Path(sys.prefix, "lib").glob("python3*/site-packages"))
    parser.add_argument("--path", default=str(default), help="Folder of documents (a 'dir' source).")
    parser.add_argument("--limit", type=int, default=0, help="Stop after this many documents (0: all).")
    parser.add_argument("--rev", default="main", help="Git revision of the baseline modules.")
    parser.add_argument(
        "--stage", action="store_true", help="Instead: run the whole corpus stage old vs new and compare."
    )
    args = parser.parse_args()
    if args.stage:
        sys.exit(0 if compare_stage(args.path, args.rev) else 1)
    timed, docs, size, _, diffs = compare(args.path, args.limit, args.rev)
    read = timed.seconds.get(("read", "old"), 0.0)
    print(f"{docs} documents, {size / 1e6:.1f} M characters from {args.path}; baseline {args.rev}\n")
    print("| step | baseline CPU s | current CPU s | speed-up | current / read path |")
    print("|---|---:|---:|---:|---:|")
    print(f"| read + decode | {read:.2f} | {read:.2f} | 1.00 | 1.00 |")
    for step in STEPS[1:]:
        a, b = timed.seconds.get((step, "old"), 0.0), timed.seconds.get((step, "new"), 0.0)
        print(f"| {step} | {a:.2f} | {b:.2f} | {a / max(b, 1e-9):.2f} | {b / max(read, 1e-9):.2f} |")
    print(f"\n{len(diffs)} document(s) differ")
    for line in diffs[:20]:
        print("  " + line)
    sys.exit(1 if diffs else 0)


if __name__ == "__main__":
    main()
