"""Corpus stage at real-world size (issue 22): throughput against today's code, the speed-up of N workers
over one, each cleaning step's cost, peak memory at 1x and Kx the corpus, and datatrove's MinHash dedup on
the same documents -- every figure a ratio against a baseline measured in the same run.

Corpora: ``--corpus`` (default: the project venv's ``site-packages``, ~300 MB of messy real Python) as is
(1x), and a generated tree of ``--scale`` K copies of its ``.py`` files under different folder names,
built once per run in the work folder and deleted at the end. Copy 0 is the corpus itself; in every
other copy a deterministic ``--edit_fraction`` of the files gets small edits (a comment line added, one
identifier renamed throughout), so near-dedup has real work; the rest are hard links (no disk), which
exact de-duplication drops.

Every measurement runs the real CLI as a subprocess, ``python -m gitnetic corpus --source dir --path P
--max_bytes 0 --out_dir D ...``, and samples the whole process tree every 50 ms: peak RSS is the largest
sum over the tree (workers included); the largest single process is shown too. Throughput is the input
(the sizes of the files the stage considers: its default ``**/*.py`` under ``max_file_bytes``) over the
wall time. The baseline "today" is commit ``ecc6839`` (before issue 22), extracted with ``git archive``
into the work folder and run from there (PYTHONPATH) on the 1x corpus with defaults.

Runs: today (defaults); defaults (N workers); defaults with ``--num_workers 1`` (its outputs must hash
equal to the N-worker run's; stats.json compared without its ``out_dir``); the bare read path (no quality
filters, redaction, near-dedup or decontamination) and the bare path plus each one step alone, whose
cost is ``(wall - bare wall) / bare wall``; defaults at Kx. ``--num_workers`` is passed only when the
checkout's corpus stage has it (detected from its ``--help``): ``--num_workers N`` when ``--workers N``
is given, else nothing (the stage's default: every core); the "processes" column says how many ran.

datatrove (``bench/datatrove_minhash.py``, in its own venv, ``--datatrove-python``) gets exactly the
documents our near-dedup sees: our stage with ``--neardup.enabled false --splits.valid_ratio 0 --splits.test_ratio 0``
writes every surviving document to train.jsonl in corpus order (split into one shard per core); the same
with near-dedup on gives our drops (input paths missing from its output). Its 4-stage pipeline runs with
its default config and with the one closest to ours; the sets of dropped paths are compared, and each
disputed example path is shown with its largest exact Jaccard (our 5-gram word shingles) and with which
file, which says whether it was a near-duplicate at our 0.85.

Units: MB = 10^6 bytes of input; RSS in MiB.

Run (repository root): ``.venv/bin/python bench/corpus_scale.py`` (``--help`` for options). It prints
Markdown tables and a goal summary with PASS/FAIL; nothing is asserted.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil

from gitnetic.data.corpus.neardup.index import jaccard, shingles
from gitnetic.data.corpus.sources.dir import dir_candidates

REPO = Path(__file__).resolve().parent.parent
BASELINE_COMMIT = "ecc6839"
DEFAULT_DATATROVE_PYTHON = Path("/work/dtvenv/bin/python")
MAX_FILE_BYTES = 1_000_000  # the stage's default max_file_bytes: larger files are skipped unread
MB = 1e6
NO_DATATROVE = (
    "datatrove comparison skipped: no datatrove venv. Enable it with `python -m venv --system-site-packages "
    "/work/dtvenv && /work/dtvenv/bin/pip install datatrove spacy 'xxhash<4'` (or pass --datatrove-python)."
)

# The bare read path: read, decode, exact-dedup, write; no cleaning step.
BARE = [
    "--filters.enabled", "false", "--redact.secrets", "false", "--redact.emails", "false",
    "--neardup.enabled", "false", "--decontaminate.benchmarks",
]  # fmt: skip
# One cleaning step on top of the bare path (later flags win).
STEPS = {
    "redaction": ["--redact.secrets", "true", "--redact.emails", "true"],
    "near-dedup": ["--neardup.enabled", "true"],
    "quality filters": ["--filters.enabled", "true"],
    "decontamination": ["--decontaminate.benchmarks", "humaneval"],
}
SPLITS_OFF = ["--splits.valid_ratio", "0", "--splits.test_ratio", "0"]
OUTPUTS = ("train.jsonl", "valid.jsonl", "test.jsonl", "stats.json")
IDENT = re.compile(r"\bdef ([A-Za-z_]\w*)|\bclass ([A-Za-z_]\w*)")


@dataclass
class Run:
    """One timed subprocess: wall seconds, peak RSS of its process tree (sum) and of one process."""

    label: str
    wall_s: float
    peak_tree_mb: float
    peak_one_mb: float
    processes: int = 1  # the most processes seen at once in the tree (workers ran when > 1)
    out_dir: Path | None = None


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = psutil.Process(pid), interval
        self.peak_tree = self.peak_one = self.processes = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                procs = [self.root, *self.root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            rss = []
            for proc in procs:
                try:
                    rss.append(proc.memory_info().rss)
                except psutil.NoSuchProcess:  # ended between the listing and the read
                    continue
            self.processes = max(self.processes, len(rss))
            if rss:
                self.peak_tree, self.peak_one = max(self.peak_tree, sum(rss)), max(self.peak_one, max(rss))
            self.done.wait(self.interval)


def timed(label: str, cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> Run:
    """Run ``cmd`` to completion, sampling its tree; exits with the log's tail if it fails."""
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=fh, stderr=subprocess.STDOUT)
        sampler = TreeSampler(proc.pid)
        sampler.start()
        rc = proc.wait()
        wall = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
    if rc != 0:
        tail = log.read_text(errors="replace")[-3000:]
        sys.exit(f"{label} failed (exit {rc}): {' '.join(cmd)}\n{tail}")
    return Run(label, wall, sampler.peak_tree / 2**20, sampler.peak_one / 2**20, sampler.processes)


class Bench:
    """The work folder, the environment of every run and the runs made so far."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(REPO),
        }
        self.cwd = work / "cwd"  # no gitnetic/ here: `python -m` puts the cwd first on sys.path
        self.cwd.mkdir(parents=True, exist_ok=True)
        self.has_workers_flag = "--num_workers" in self.cli_help()
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gitnetic")], check=True)
        self.count = 0
        self.corpus_mb = input_mb(args.corpus)
        self.scaled_mb = 0.0

    def cli_help(self) -> str:
        cmd = [sys.executable, "-m", "gitnetic", "corpus", "--help"]
        return subprocess.run(cmd, env=self.env, cwd=self.cwd, capture_output=True, text=True).stdout

    def workers_flag(self, n: int | None) -> list[str]:
        return ["--num_workers", str(n)] if n is not None and self.has_workers_flag else []

    def corpus(self, label: str, path: Path, flags: list[str], code: Path = REPO) -> Run:
        """The corpus stage on ``path``, best wall of ``--repeats`` runs (peak RSS: the largest seen)."""
        best: Run | None = None
        for _ in range(self.args.repeats):
            self.count += 1
            out = self.work / f"out{self.count:02d}"
            cmd = [sys.executable, "-m", "gitnetic", "corpus", "--source", "dir", "--path", str(path)]
            cmd += ["--max_bytes", "0", "--out_dir", str(out), *flags]
            env = {**self.env, "PYTHONPATH": str(code)}
            run = timed(label, cmd, env, self.cwd, self.work / f"out{self.count:02d}.log")
            run.out_dir = out
            if best is not None:
                run.peak_tree_mb = max(run.peak_tree_mb, best.peak_tree_mb)
                run.peak_one_mb = max(run.peak_one_mb, best.peak_one_mb)
                run.processes = max(run.processes, best.processes)
                faster, slower = (best, run) if best.wall_s < run.wall_s else (run, best)
                shutil.rmtree(slower.out_dir, ignore_errors=True)
                run.wall_s, run.out_dir = faster.wall_s, faster.out_dir
            best = run
        print(f"  {label}: {best.wall_s:.1f} s, peak RSS {best.peak_tree_mb:.0f} MiB", flush=True)
        return best


def input_mb(root: Path) -> float:
    """MB the stage considers: its default-included files (``**/*.py``) no larger than max_file_bytes.
    Reads them once too, so the first timed run does not pay for a cold page cache and later ones not."""
    total = 0
    for cand in dir_candidates(root, ["**/*.py"], []):
        if cand.size <= MAX_FILE_BYTES:
            cand.read()
            total += cand.size
    return total / MB


def edit(text: str, copy: int) -> str:
    """A small deterministic edit: one comment line added after the first line, one identifier renamed."""
    lines = text.split("\n")
    lines.insert(1, f"# variant {copy} of this module")
    out = "\n".join(lines)
    found = IDENT.search(out)
    if found:
        name = found.group(1) or found.group(2)
        out = re.sub(rf"\b{re.escape(name)}\b", f"{name}_v{copy}", out)
    return out


def build_scaled(src: Path, dst: Path, copies: int, fraction: float) -> None:
    """``copies`` trees ``copy_<i>/`` of ``src``'s considered files; see the module docstring."""
    files = [c.key for c in dir_candidates(src, ["**/*.py"], [])]
    for i in range(copies):
        for rel in files:
            target = dst / f"copy_{i}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            pick = int.from_bytes(hashlib.blake2b(f"{i}:{rel}".encode(), digest_size=8).digest(), "big")
            if i > 0 and pick / 2**64 < fraction:
                try:
                    text = (src / rel).read_text(encoding="utf-8")
                except (UnicodeDecodeError, OSError):
                    text = None
                if text is not None:
                    target.write_text(edit(text, i), encoding="utf-8")
                    continue
            try:
                os.link(src / rel, target)
            except OSError:  # another file system (or no hard links there): a copy
                shutil.copyfile(src / rel, target)


def check_disk(work: Path, need_mb: float) -> None:
    free = shutil.disk_usage(work).free / MB
    if free < 1.5 * need_mb:
        sys.exit(f"work folder {work} has {free:.0f} MB free; this run needs about {need_mb:.0f} MB")


def output_digest(out: Path) -> str:
    """One hash over the stage's outputs (stats.json without its out_dir, which names the folder)."""
    h = hashlib.sha256()
    for name in OUTPUTS:
        data = (out / name).read_bytes()
        if name == "stats.json":
            stats = json.loads(data)
            stats.pop("out_dir", None)
            data = json.dumps(stats).encode()  # key order kept: a different order is a difference
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def dropped_paths(input_out: Path, kept_out: Path) -> tuple[list[str], set[str]]:
    """``(input paths in corpus order, the ones missing from every split of kept_out)``."""
    with open(input_out / "train.jsonl", encoding="utf-8") as fh:
        paths = [json.loads(line)["path"] for line in fh]
    kept: set[str] = set()
    for split in ("train", "valid", "test"):
        with open(kept_out / f"{split}.jsonl", encoding="utf-8") as fh:
            kept.update(json.loads(line)["path"] for line in fh)
    return paths, set(paths) - kept


def shard(train: Path, folder: Path, parts: int) -> None:
    """Split train.jsonl into ``parts`` contiguous shards (order kept) so every datatrove task has work."""
    lines = train.read_bytes().splitlines(keepends=True)
    folder.mkdir(parents=True)
    step = -(-len(lines) // parts)
    for k in range(parts):
        (folder / f"{k:05d}.jsonl").write_bytes(b"".join(lines[k * step : (k + 1) * step]))


def best_matches(train: Path, wanted: set[str], ngram: int = 5) -> dict[str, tuple[float, str]]:
    """``path -> (largest exact Jaccard of its word shingles with an earlier input document, that path)``
    for the ``wanted`` paths: whether a drop only one side made was a later near-copy at 0.85 (our rule,
    first copy kept; datatrove keeps one document per cluster, and its clusters chain: A~B, B~C)."""

    def rows() -> Iterator[tuple[str, str]]:  # streamed twice rather than held: the input is ~250 MB
        with open(train, encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                yield row["path"], row["text"]

    mine = {path: shingles(text, ngram) for path, text in rows() if path in wanted}
    best = dict.fromkeys(wanted, (0.0, "-"))
    pending = dict(mine)  # the wanted documents not reached yet in corpus order
    for other, text in rows():
        pending.pop(other, None)
        if not pending:
            break
        theirs = shingles(text, ngram)
        for path, items in pending.items():
            if (sim := jaccard(items, theirs)) > best[path][0]:
                best[path] = (sim, other)
    return best


def datatrove_rows(bench: Bench, python: Path, pre: Run, ours: Run, cores: int) -> list[str]:
    """datatrove's MinHash dedup (both configurations) on our pre-near-dedup documents vs ours."""
    paths, ours_dropped = dropped_paths(pre.out_dir, ours.out_dir)
    shard(pre.out_dir / "train.jsonl", bench.work / "dt_input", cores)
    mb = (pre.out_dir / "train.jsonl").stat().st_size / MB
    our_cost = max(ours.wall_s - pre.wall_s, 0.0)
    rows = [
        f"Input: {len(paths):,} documents ({mb:.1f} MB of JSONL) that reach our near-dedup step.",
        "",
        "| near-dedup | wall s | peak RSS MiB (tree / largest process) | processes | dropped | both drop "
        "| only ours | only datatrove |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| ours (0.85, 128 perms, exact check): whole stage | {ours.wall_s:.1f} | "
        f"{ours.peak_tree_mb:.0f} / {ours.peak_one_mb:.0f} | {ours.processes} | {len(ours_dropped):,} | | | |",
        f"| ours: near-dedup's share (stage with - without) | {our_cost:.1f} | | | | | | |",
    ]
    groups: list[tuple[str, str, list[str]]] = []
    timings: list[str] = []
    script = Path(__file__).with_name("datatrove_minhash.py")
    for config, title in (
        ("default", "datatrove default (5-grams, 14x8)"),
        ("ours", "datatrove 16x8 like ours"),
    ):
        work, out = bench.work / f"dt_{config}", bench.work / f"dt_{config}.json"
        cmd = [str(python), str(script), "--input", str(bench.work / "dt_input"), "--work", str(work)]
        cmd += ["--config", config, "--tasks", str(cores), "--workers", str(cores), "--out", str(out)]
        run = timed(title, cmd, bench.env, bench.cwd, bench.work / f"dt_{config}.log")
        result = json.loads(out.read_text())
        theirs = set(result["removed"])
        shares = ", ".join(f"{name} {sec:.1f}" for name, sec in result["stage_s"].items())
        timings.append(f"- {title}, wall s per stage (worker pools' start-up included): {shares}")
        both, only_ours, only_dt = ours_dropped & theirs, ours_dropped - theirs, theirs - ours_dropped
        print(f"  {title}: {run.wall_s:.1f} s, peak RSS {run.peak_tree_mb:.0f} MiB", flush=True)
        rows.append(
            f"| {title} | {run.wall_s:.1f} | {run.peak_tree_mb:.0f} / {run.peak_one_mb:.0f} | {run.processes} "
            f"| {len(theirs):,} | {len(both):,} | {len(only_ours):,} | {len(only_dt):,} |"
        )
        for name, group in (("both", both), ("only ours", only_ours), ("only datatrove", only_dt)):
            groups.append((title, name, sorted(group)[:4]))
    disputed = {p for _, name, some in groups if name != "both" for p in some}
    best = best_matches(pre.out_dir / "train.jsonl", disputed)
    examples = [
        f"- {title}, {name}: "
        + (", ".join(f"{p} ({best[p][0]:.3f} ~ {best[p][1]})" if p in best else p for p in some) or "-")
        for title, name, some in groups
    ]
    note = (
        "Example paths (disputed ones with their largest exact Jaccard, our shingles, with an earlier file):"
    )
    return [*rows, "", *timings, "", note, *examples]


def parse_args() -> argparse.Namespace:
    default_corpus = REPO / ".venv/lib/python3.11/site-packages"
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus", type=Path, default=default_corpus, help="the 1x folder (default: %(default)s)"
    )
    parser.add_argument("--scale", type=int, default=4, help="K: copies in the larger corpus (default 4)")
    parser.add_argument(
        "--edit_fraction", type=float, default=0.5, help="files edited in each extra copy (default 0.5)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="N for the parallel runs (default: the stage's own, all cores)",
    )
    parser.add_argument(
        "--skip", default="", help="comma list of parts to leave out: datatrove, baseline, scale, steps"
    )
    parser.add_argument(
        "--datatrove-python",
        type=Path,
        default=DEFAULT_DATATROVE_PYTHON if DEFAULT_DATATROVE_PYTHON.exists() else None,
        help="python of a venv with datatrove (default: /work/dtvenv/bin/python when it exists)",
    )
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; best wall kept")
    parser.add_argument(
        "--work_dir", type=Path, default=None, help="parent of the scratch folder (default: tmp)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (outputs, logs)")
    args = parser.parse_args()
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - {"datatrove", "baseline", "scale", "steps"}
    if unknown:
        parser.error(f"--skip: unknown part(s) {sorted(unknown)}; use datatrove, baseline, scale, steps")
    if args.datatrove_python is not None and not args.datatrove_python.is_file():
        parser.error(f"--datatrove-python {args.datatrove_python} does not exist; pass a venv's bin/python")
    if not args.corpus.is_dir():
        parser.error(f"--corpus {args.corpus} is not a folder; pass --corpus to a folder of source files")
    return args


def goal(rows: list[str], name: str, value: float | None, fmt: str, target: str, ok: bool | None) -> None:
    shown = "n/a" if value is None else format(value, fmt)
    verdict = "n/a" if value is None or ok is None else ("PASS" if ok else "FAIL")
    rows.append(f"| {name} | {shown} | {target} | {verdict} |")


def measure(bench: Bench, args: argparse.Namespace, cores: int) -> dict[str, Run]:
    """Every corpus-stage run of the bench, keyed by role (only the parts not skipped)."""
    default = bench.workers_flag(args.workers)
    runs: dict[str, Run] = {}
    if "baseline" not in args.skip:
        code = bench.work / "baseline"
        code.mkdir()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BASELINE_COMMIT], capture_output=True)
        if archive.returncode:
            sys.exit(
                f"cannot extract the baseline {BASELINE_COMMIT}: {archive.stderr.decode().strip()} (--skip baseline)"
            )
        subprocess.run(["tar", "-x", "-C", str(code)], input=archive.stdout, check=True)
        # byte-compiled now, untimed: the current checkout's modules already are, and compiling them in the
        # first timed run cost the baseline ~1-2 s on the busy VM
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(code / "gitnetic")], check=True)
        runs["today"] = bench.corpus(f"today ({BASELINE_COMMIT}), defaults", args.corpus, [], code=code)
    runs["default"] = bench.corpus("defaults", args.corpus, default)
    if bench.has_workers_flag:
        runs["one"] = bench.corpus("defaults, 1 worker", args.corpus, bench.workers_flag(1))
    if "steps" not in args.skip:
        runs["bare"] = bench.corpus("bare read path", args.corpus, BARE + default)
        for step, flags in STEPS.items():
            runs[step] = bench.corpus(f"bare + {step}", args.corpus, BARE + flags + default)
    if "scale" not in args.skip:
        scaled = bench.work / f"corpus_{args.scale}x"
        check_disk(bench.work, args.edit_fraction * (args.scale - 1) * bench.corpus_mb)
        t0 = time.perf_counter()
        build_scaled(args.corpus, scaled, args.scale, args.edit_fraction)
        print(f"  built the {args.scale}x tree in {time.perf_counter() - t0:.0f} s", flush=True)
        bench.scaled_mb = input_mb(scaled)
        runs["scaled"] = bench.corpus(f"defaults, {args.scale}x", scaled, default)
    if "datatrove" not in args.skip and args.datatrove_python is not None:
        runs["pre"] = bench.corpus(
            "defaults without near-dedup, one split",
            args.corpus,
            default + SPLITS_OFF + ["--neardup.enabled", "false"],
        )
        runs["ours"] = bench.corpus("defaults, one split", args.corpus, default + SPLITS_OFF)
    return runs


def report(
    bench: Bench, args: argparse.Namespace, runs: dict[str, Run], cores: int
) -> tuple[list[str], list[str]]:
    """The Markdown tables: every run, and the goals with PASS/FAIL."""
    one_x = bench.corpus_mb
    lines = [
        f"Input: {args.corpus} = {one_x:.1f} MB considered; {cores} cores; "
        f"--num_workers {'supported' if bench.has_workers_flag else 'not in this checkout (runs use one process)'}",
        "",
        "| run | input MB | wall s | MB/s | peak RSS MiB (tree) | largest process MiB | processes |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for key, run in runs.items():
        mb = bench.scaled_mb if key == "scaled" else one_x
        lines.append(
            f"| {run.label} | {mb:.1f} | {run.wall_s:.1f} | {mb / run.wall_s:.2f} | "
            f"{run.peak_tree_mb:.0f} | {run.peak_one_mb:.0f} | {run.processes} |"
        )
    rows = ["| goal | measured | target | verdict |", "|---|---:|---|---|"]
    today, default, one = runs.get("today"), runs["default"], runs.get("one")
    speed = today.wall_s / default.wall_s if today else None
    goal(rows, "whole stage, defaults: throughput vs today", speed, ".2f", ">= 1.8x", speed and speed >= 1.8)
    workers = args.workers or cores
    gain = one.wall_s / default.wall_s if one else None
    goal(rows, f"speed-up of {workers} workers over 1 (defaults)", gain, ".2f", "(reported)", None)
    if one:
        same = output_digest(one.out_dir) == output_digest(default.out_dir)
        rows.append(
            f"| {workers}-worker outputs (splits + stats.json) equal the 1-worker run's | "
            f"{'equal' if same else 'DIFFERENT'} | equal | {'PASS' if same else 'FAIL'} |"
        )
    else:
        goal(rows, "N-worker outputs equal the 1-worker run's", None, "", "equal", None)
    bare = runs.get("bare")
    for step in STEPS:
        cost = (runs[step].wall_s - bare.wall_s) / bare.wall_s if bare else None
        limited = step in ("near-dedup", "redaction")  # the goals; the others are reported only
        ok = (cost is not None and cost <= 1.0) if limited else None
        goal(rows, f"cost of {step} / bare read path", cost, ".2f", "<= 1.0" if limited else "(reported)", ok)
    scaled = runs.get("scaled")
    ratio = scaled.peak_tree_mb / default.peak_tree_mb if scaled else None
    goal(
        rows, f"peak RSS at {args.scale}x / at 1x (defaults)", ratio, ".2f", "<= 1.5", ratio and ratio <= 1.5
    )
    rate = bench.scaled_mb / scaled.wall_s if scaled else None
    goal(rows, f"MB/s at {args.scale}x (defaults)", rate, ".2f", "(reported)", None)
    return lines, rows


def main() -> None:
    args = parse_args()
    cores = len(os.sched_getaffinity(0))
    work = Path(tempfile.mkdtemp(prefix="corpus_scale-", dir=args.work_dir))
    started = time.strftime("%H:%M UTC", time.gmtime())
    print(f"corpus_scale: scratch {work}; load average at start {os.getloadavg()[0]:.1f}", flush=True)
    if "datatrove" not in args.skip and args.datatrove_python is None:
        print(NO_DATATROVE, flush=True)
    try:
        bench = Bench(args, work)
        runs = measure(bench, args, cores)
        lines, goals = report(bench, args, runs, cores)
        if "datatrove" in args.skip:
            pass  # asked for
        elif args.datatrove_python is None:
            lines += ["", NO_DATATROVE]
        else:
            lines += ["", *datatrove_rows(bench, args.datatrove_python, runs["pre"], runs["ours"], cores)]
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    load = os.getloadavg()[0]
    print(f"\n{started} to {time.strftime('%H:%M UTC', time.gmtime())}, load average at the end {load:.1f}\n")
    print("\n".join([*lines, "", *goals]))


if __name__ == "__main__":
    main()
