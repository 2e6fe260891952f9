"""Dataset sources (issue 30): the corpus stage reading a ~1 GB Parquet code dataset in The Stack v1
schema (and a JSONL.gz copy of it), every figure a ratio against datatrove's ``ParquetReader`` ->
``JsonlWriter`` measured in the same run on the same cores.

The dataset (built once, cached under ``--data_dir``; a changed recipe builds a new one beside it): the
``.py`` files of the project venv's ``site-packages`` (UTF-8, at most 1 MB, sorted), ``--copies`` times
under different repository names (``owner<i>/<top-level package>``), so duplicate families are in it.
Copy 0 is the files as they are; in every other copy a deterministic ``--edit_fraction`` of the files
gets a small edit (a comment line, one identifier renamed: near-duplicates), the rest are exact copies.
Rows carry The Stack v1's columns (``content``, ``max_stars_repo_path``, ``lang`` = "Python",
``max_stars_repo_licenses`` (a list), ``max_stars_repo_name``, ``hexsha``, ``size``, the issue/fork
columns, ...), ``--files_per_copy`` Parquet files per copy written with pyarrow (``--row_group_rows``
rows per row group, snappy) in a Hugging Face download's layout
(``parquet/data/python/train-00000-of-00008.parquet``), the same rows as ``.jsonl.gz`` files beside
them, and ``parquet_1x/`` (links to copy 0's files: the 1x dataset of the memory comparison).

Runs, each a subprocess whose process tree is sampled every 50 ms (``corpus_scale.TreeSampler``):

* baseline: datatrove 0.10's ``ParquetReader`` -> ``JsonlWriter`` (``bench/datatrove_dataset.py copy``),
  ``--workers`` processes, one task per file, its reader's defaults (every column read, kept as
  metadata); every other figure is divided by its wall time. Also the same reading only ``content`` and
  the id (``--text_only``), reported beside it;
* pyarrow reading the ``content`` column bare (``iter_batches``, no threads: one core);
* the real CLI, ``python -m gitnetic corpus --config RUN.yaml:corpus``, ``num_workers: --workers``,
  decontamination off everywhere:
  - "no cleaning": the source's ``clean: false`` (no filters, redaction, near-dedup; exact dedup stays);
  - "filters + redaction + exact dedup": ``clean: true``, ``neardup.enabled: false``;
  - "+ near-dedup": the same with ``neardup.enabled: true`` (the stage's defaults otherwise);
  - "near-dedup only": filters and redaction off, near-dedup on: the like-for-like of datatrove's MinHash;
  - "no cleaning, JSONL.gz": the first on the ``.jsonl.gz`` copy;
  - "+ near-dedup, 1x": the full-cleaning run on copy 0 alone, for peak RSS at 1x against the whole
    dataset (``--copies`` x: the files of 1x plus their copies, as in corpus_scale.py);
* datatrove's MinHash pipeline on the same Parquet files (``bench/datatrove_minhash.py``'s ``ours``
  configuration: 16 buckets x 8 hashes = the stage's LSH bands at 0.85 and 128 permutations, 5-grams of
  ``\\w+`` words of the raw text; no exact verification), writing the kept documents.

Precision of the near-dedup drops (cheap, sampled): a dropped document is confirmed when some other
document has an exact Jaccard (the stage's 5-gram word shingles) of at least 0.85 with it: an exact copy
anywhere in the dataset (a digest of every row's content), else looked for among its family (the same file in the other copies) and, failing that, among the documents with the
same file name in the same top-level package (at most ``SECOND_LOOK``). Up to ``--precision_sample``
drops of each side and of each side's disputed drops are checked; an unconfirmed drop may still have a
partner elsewhere (so the share confirmed is a lower bound of the precision).

Units: MB = 10^6 bytes of ``content``; RSS in MiB. The datatrove venv is made once (``--datatrove_venv``,
default under ``--data_dir``'s parent) with pip from ``pyproject.toml``'s ``bench`` extra.

Run (repository root): ``nice -n 10 .venv/bin/python bench/dataset_source.py`` (``--quick`` for a
~40 MB dataset; ``--help`` for options). Prints Markdown tables and a goal summary; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml
from corpus_scale import Run, edit, timed  # this folder: the tree sampler and the near-copy edit

from gitnetic.data.corpus.neardup.index import jaccard, shingles

REPO = Path(__file__).resolve().parent.parent
SITE_PACKAGES = REPO / ".venv/lib/python3.11/site-packages"
MAX_FILE_BYTES = 1_000_000  # The Stack's own cap and the stage's default max_file_bytes
MB = 1e6
THRESHOLD, NGRAM = 0.85, 5  # the stage's neardup defaults, which the runs keep
SECOND_LOOK = 400  # precision: same-name files compared with an unconfirmed drop, at most
RECIPE_VERSION = 1  # bump when the rows written change, so a cached dataset is rebuilt
LICENSES = (["MIT"], ["Apache-2.0"], ["BSD-3-Clause"], ["MIT", "Apache-2.0"], ["BSD-2-Clause"], ["ISC"])
ALLOWED = sorted({name for group in LICENSES for name in group})
REPO_COL, PATH_COL = "max_stars_repo_name", "max_stars_repo_path"

# The Stack v1 (bigcode/the-stack, bigcode/the-stack-dedup) columns, in its order.
_GROUP = [
    ("repo_path", pa.string()),
    ("repo_name", pa.string()),
    ("repo_head_hexsha", pa.string()),
    ("repo_licenses", pa.list_(pa.string())),
    ("count", pa.int64()),
]
_EVENTS = [("repo_{}_event_min_datetime", pa.string()), ("repo_{}_event_max_datetime", pa.string())]
SCHEMA = pa.schema(
    [("hexsha", pa.string()), ("size", pa.int64()), ("ext", pa.string()), ("lang", pa.string())]
    + [
        (f"max_{kind}_{name}", typ)
        for kind, what in (("stars", "stars"), ("issues", "issues"), ("forks", "forks"))
        for name, typ in _GROUP + [(e.format(what), t) for e, t in _EVENTS]
    ]
    + [
        ("content", pa.string()),
        ("avg_line_length", pa.float64()),
        ("max_line_length", pa.int64()),
        ("alphanum_fraction", pa.float64()),
    ]
)


@dataclass
class Dataset:
    root: Path
    rows: int
    content_mb: float
    files: int

    @property
    def parquet(self) -> Path:
        return self.root / "parquet/data/python"

    @property
    def parquet_1x(self) -> Path:
        return self.root / "parquet_1x"

    @property
    def jsonl(self) -> Path:
        return self.root / "jsonl/data/python"


# ----------------------------------------------------------------------------------------------- dataset


def _digest(text: str, size: int = 8) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=size).digest(), "big")


def source_files(root: Path, copy_mb: float) -> list[tuple[str, str, Path]]:
    """``(top-level package, path inside it, file)`` of the ``.py`` files under ``root`` in sorted order,
    at most ``MAX_FILE_BYTES`` each, until ``copy_mb`` MB (0 = all)."""
    out, total = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if not name.endswith(".py") or not path.is_file():
                continue
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                continue
            rel = path.relative_to(root)
            top, inner = (rel.parts[0], "/".join(rel.parts[1:])) if len(rel.parts) > 1 else (rel.stem, name)
            if copy_mb and total + size > copy_mb * MB:
                return out
            out.append((top, inner, path))
            total += size
    return out


def row(copy: int, top: str, inner: str, text: str) -> dict:
    """One row in The Stack v1's schema: the repository ``owner<copy>/<top>``, the file ``inner``."""
    data = text.encode("utf-8")
    repo = f"owner{copy}/{top}"
    head = hashlib.sha1(repo.encode()).hexdigest()
    licenses = LICENSES[_digest(top) % len(LICENSES)]
    lines = text.split("\n")
    group = {
        "repo_path": inner,
        "repo_name": repo,
        "repo_head_hexsha": head,
        "repo_licenses": licenses,
        "count": _digest(repo) % 5000,
    }
    out = {
        "hexsha": hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest(),  # git's blob id, as The Stack's
        "size": len(data),
        "ext": "py",
        "lang": "Python",
    }
    for kind in ("stars", "issues", "forks"):
        out.update({f"max_{kind}_{key}": value for key, value in group.items()})
        out[f"max_{kind}_repo_{kind}_event_min_datetime"] = None
        out[f"max_{kind}_repo_{kind}_event_max_datetime"] = None
    out["content"] = text
    out["avg_line_length"] = len(text) / len(lines)
    out["max_line_length"] = max(len(line) for line in lines)
    out["alphanum_fraction"] = sum(c.isalnum() for c in text) / max(len(text), 1)
    return out


def copy_rows(files: list[tuple[str, str, Path]], copy: int, fraction: float) -> list[dict]:
    rows = []
    for top, inner, path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue  # The Stack holds text only
        if copy > 0 and _digest(f"{copy}:{top}/{inner}") / 2**64 < fraction:
            text = edit(text, copy)
        rows.append(row(copy, top, inner, text))
    return rows


def build(args: argparse.Namespace) -> Dataset:
    """The dataset of ``args`` under ``--data_dir``: reused when its recipe matches, else built in a
    scratch folder and renamed into place (a killed build leaves no half dataset under the name)."""
    recipe = {
        "version": RECIPE_VERSION,
        "source": str(args.corpus),
        "copies": args.copies,
        "copy_mb": args.copy_mb,
        "edit_fraction": args.edit_fraction,
        "files_per_copy": args.files_per_copy,
        "row_group_rows": args.row_group_rows,
    }
    key = f"c{args.copies}-{'all' if not args.copy_mb else f'{args.copy_mb:g}mb'}-{_digest(json.dumps(recipe, sort_keys=True)):016x}"
    root = args.data_dir / key
    done = root / "build.json"
    if done.is_file():
        info = json.loads(done.read_text())
        print(f"dataset: reusing {root}", flush=True)
        return Dataset(root, info["rows"], info["content_mb"], info["files"])
    args.data_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=args.data_dir))
    t0 = time.perf_counter()
    files = source_files(args.corpus, args.copy_mb)
    total = args.copies * args.files_per_copy
    (tmp / "parquet/data/python").mkdir(parents=True)
    (tmp / "jsonl/data/python").mkdir(parents=True)
    (tmp / "parquet_1x").mkdir()
    rows_n = content = 0
    for copy in range(args.copies):
        rows = copy_rows(files, copy, args.edit_fraction)
        step = -(-len(rows) // args.files_per_copy)
        for part in range(args.files_per_copy):
            index = copy * args.files_per_copy + part
            chunk = rows[part * step : (part + 1) * step]
            name = f"train-{index:05d}-of-{total:05d}"
            parquet = tmp / "parquet/data/python" / f"{name}.parquet"
            table = pa.Table.from_pylist(chunk, schema=SCHEMA)
            pq.write_table(table, parquet, row_group_size=args.row_group_rows, compression="snappy")
            with gzip.open(
                tmp / "jsonl/data/python" / f"{name}.jsonl.gz", "wt", compresslevel=6, encoding="utf-8"
            ) as fh:
                for item in chunk:
                    fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            if copy == 0:
                os.link(parquet, tmp / "parquet_1x" / parquet.name)
        rows_n += len(rows)
        content += sum(item["size"] for item in rows)
        print(f"  copy {copy}: {len(rows):,} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
    info = {**recipe, "rows": rows_n, "content_mb": content / MB, "files": total}
    (tmp / "build.json").write_text(json.dumps(info, indent=1))
    if root.exists():  # a build.json-less leftover of an older layout
        shutil.rmtree(root)
    tmp.rename(root)
    print(f"dataset: built {root} in {time.perf_counter() - t0:.0f} s", flush=True)
    return Dataset(root, rows_n, content / MB, total)


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file()) / MB


def warm(folder: Path) -> None:
    """Reads every file once so no timed run pays for a cold page cache."""
    for path in sorted(folder.iterdir()):
        with open(path, "rb") as fh:
            while fh.read(1 << 24):
                pass


# ------------------------------------------------------------------------------------------------- runs


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path, data: Dataset) -> None:
        self.args, self.work, self.data = args, work, data
        self.env = {
            **os.environ,
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONPATH": str(args.code),
        }
        self.cwd = work / "cwd"  # no gitnetic/ here: `python -m` puts the cwd first on sys.path
        self.cwd.mkdir(parents=True)
        if args.code.resolve() == REPO:  # byte-compiled now, untimed, so no timed run pays for it
            subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "gitnetic")], check=True)
        else:  # another checkout is only read
            self.env["PYTHONDONTWRITEBYTECODE"] = "1"
        self.count = 0
        self.docs: dict[str, int] = {}  # run label -> documents written

    def gitnetic(self, label: str, source: dict, corpus: dict, keep_output: bool = False) -> Run:
        """The corpus stage on one source via the real CLI, best wall of ``--repeats`` runs; its outputs
        are deleted once counted unless ``keep_output`` (or ``--keep``): each run writes about a GB."""
        best: Run | None = None
        for _ in range(self.args.repeats):
            self.count += 1
            out = self.work / f"out{self.count:02d}"
            config = self.work / f"run{self.count:02d}.yaml"
            params = {
                "sources": [{"name": "stack", **source}],
                "num_workers": self.args.workers,
                "decontaminate": {"benchmarks": []},
                **corpus,
            }
            config.write_text(yaml.safe_dump({"corpus": params}, sort_keys=False))
            cmd = [sys.executable, "-m", "gitnetic", "corpus", "--config", f"{config}:corpus"]
            cmd += ["--out_dir", str(out)]
            run = timed(label, cmd, self.env, self.cwd, self.work / f"out{self.count:02d}.log")
            run.out_dir = out
            best = keep_best(best, run)
        self.docs[label] = json.loads((best.out_dir / "stats.json").read_text())["documents"]["total"]
        self.done(best, keep_output)
        print(f"  {label}: {best.wall_s:.1f} s, peak RSS {best.peak_tree_mb:.0f} MiB", flush=True)
        return best

    def done(self, run: Run, keep_output: bool) -> None:
        if not keep_output and not self.args.keep and run.out_dir is not None:
            shutil.rmtree(run.out_dir, ignore_errors=True)

    def datatrove(
        self, label: str, python: Path, mode: str, folder: Path, extra: tuple[str, ...] = ()
    ) -> tuple[Run, dict]:
        best: Run | None = None
        result: dict = {}
        for _ in range(self.args.repeats):
            self.count += 1
            work = self.work / f"dt{self.count:02d}"
            out = self.work / f"dt{self.count:02d}.json"
            cmd = [str(python), str(Path(__file__).with_name("datatrove_dataset.py")), mode]
            cmd += ["--input", str(folder), "--work", str(work), "--out", str(out)]
            cmd += ["--tasks", str(self.data.files), "--workers", str(self.args.workers), *extra]
            run = timed(label, cmd, self.env, self.cwd, self.work / f"dt{self.count:02d}.log")
            run.out_dir = work
            if out.exists() and (best is None or run.wall_s < best.wall_s):
                result = json.loads(out.read_text())
            best = keep_best(best, run)
        self.docs[label] = count_lines(best.out_dir / "out")
        self.done(best, False)
        print(f"  {label}: {best.wall_s:.1f} s, peak RSS {best.peak_tree_mb:.0f} MiB", flush=True)
        return best, result


def count_lines(folder: Path) -> int:
    """Documents in a folder of JSONL files (datatrove's output)."""
    total = 0
    for path in folder.glob("*.jsonl"):
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 24):
                total += chunk.count(b"\n")
    return total


def keep_best(best: Run | None, run: Run) -> Run:
    """The faster of two repeats (its outputs kept, the other's deleted), with the larger peak RSS."""
    if best is None:
        return run
    faster, slower = (best, run) if best.wall_s <= run.wall_s else (run, best)
    shutil.rmtree(slower.out_dir, ignore_errors=True)
    faster.peak_tree_mb = max(best.peak_tree_mb, run.peak_tree_mb)
    faster.peak_one_mb = max(best.peak_one_mb, run.peak_one_mb)
    faster.processes = max(best.processes, run.processes)
    return faster


def pyarrow_read(folder: Path) -> Run:
    """The ``content`` column of every file, a batch at a time on one core; the bytes are touched."""
    t0 = time.perf_counter()
    total = 0
    for path in sorted(folder.glob("*.parquet")):
        with pq.ParquetFile(path) as handle:
            for batch in handle.iter_batches(columns=["content"], use_threads=False):
                total += batch.column(0).buffers()[2].size
    wall = time.perf_counter() - t0
    print(f"  pyarrow content column: {wall:.1f} s ({total / MB:.0f} MB of string data)", flush=True)
    return Run("pyarrow: `content` column bare (1 core)", wall, 0.0, 0.0)


def ensure_datatrove(venv: Path) -> Path:
    """The python of a venv with datatrove: ``venv`` as is when it imports what the bench uses, else made
    there with pip from ``pyproject.toml``'s ``bench`` extra (outside the project venv)."""
    python = venv / "bin/python"
    probe = [str(python), "-c", "import datatrove, pyarrow, orjson, regex, tokenizers, xxhash"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    wanted = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["bench"]
    print(f"making the datatrove venv {venv}: pip install {' '.join(wanted)}", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    return python


# -------------------------------------------------------------------------------------------- precision


def row_keys(folder: Path) -> dict[str, bytes]:
    """``repository/path -> digest of its content`` of every row with text in it (not only whitespace),
    in dataset order: the documents both sides dedup (the stage counts blank ones as empty, datatrove
    skips empty ones). A drop whose content another row repeats exactly is confirmed without a search."""
    keys = {}
    for path in sorted(folder.glob("*.parquet")):
        with pq.ParquetFile(path) as handle:
            for batch in handle.iter_batches(columns=[REPO_COL, PATH_COL, "content"]):
                mask = pc.greater(pc.binary_length(pc.utf8_trim_whitespace(batch.column(2))), 0)
                repos, paths, texts = (pc.filter(batch.column(i), mask).to_pylist() for i in range(3))
                for repo, inner, text in zip(repos, paths, texts, strict=True):
                    keys[f"{repo}/{inner}"] = hashlib.blake2b(text.encode(), digest_size=16).digest()
    return keys


def doc_key(doc: dict) -> str:
    """The ``repository/path`` of one output document of the corpus stage."""
    path = doc["path"]
    repo = doc.get("repository") or doc.get("repo")
    return f"{repo}/{path}" if repo and not path.startswith(f"{repo}/") else path


def kept_keys(out: Path) -> set[str]:
    kept: set[str] = set()
    for split in ("train", "valid", "test"):
        with open(out / f"{split}.jsonl", encoding="utf-8") as fh:
            kept.update(doc_key(json.loads(line)) for line in fh)
    return kept


def contents(folder: Path, wanted: Callable[[str], bool]) -> dict[str, str]:
    """``key -> content`` of the rows whose key ``wanted`` accepts."""
    out = {}
    for path in sorted(folder.glob("*.parquet")):
        with pq.ParquetFile(path) as handle:
            for batch in handle.iter_batches(columns=[REPO_COL, PATH_COL, "content"]):
                repos, paths, texts = (batch.column(i).to_pylist() for i in range(3))
                for repo, inner, text in zip(repos, paths, texts, strict=True):
                    key = f"{repo}/{inner}"
                    if wanted(key):
                        out[key] = text
    return out


def family(key: str, copies: int) -> list[str]:
    """The same file in the other copies: ``owner<i>/<top>/<path>`` for every other i."""
    owner, rest = key.split("/", 1)
    return [f"owner{i}/{rest}" for i in range(copies) if f"owner{i}" != owner]


def kin(key: str) -> tuple[str, str]:
    """``(top-level package, file name)``: the second look's group of a document."""
    return key.split("/", 2)[1], key.rsplit("/", 1)[-1]


def confirm(
    folder: Path, samples: dict[str, list[str]], copies: int, digests: dict[str, bytes]
) -> dict[str, float]:
    """``sampled drop -> the largest Jaccard with another document found``: 1.0 for an exact copy anywhere
    (another row with its digest), else the best among the same file in the other copies, then among the
    files of the same name in the same package (any copy; the first ``SECOND_LOOK`` of them in key
    order, so the cost stays bounded)."""
    all_keys = digests.keys()
    repeated = Counter(digests.values())
    sampled = {k for keys in samples.values() for k in keys if repeated[digests[k]] < 2}
    exact = {k for keys in samples.values() for k in keys} - sampled
    wanted = sampled | {f for k in sampled for f in family(k, copies) if f in all_keys}
    text = contents(folder, wanted.__contains__)
    sets: dict[str, set[str]] = {}

    def sh(key: str) -> set[str]:
        if key not in sets:
            sets[key] = shingles(text[key], NGRAM)
        return sets[key]

    best = {}
    for key in sampled:
        best[key] = max((jaccard(sh(key), sh(f)) for f in family(key, copies) if f in text), default=0.0)
    pending = sorted(k for k, v in best.items() if v < THRESHOLD)
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for key in sorted(all_keys):
        groups[kin(key)].append(key)
    looked = {k: [o for o in groups[kin(k)] if o != k][:SECOND_LOOK] for k in pending}
    need = {o for others in looked.values() for o in others} - set(text)
    if need:
        text.update(contents(folder, need.__contains__))
    for key in pending:
        for other in looked[key]:
            best[key] = max(best[key], jaccard(sh(key), sh(other)))
            if best[key] >= THRESHOLD:
                break
    best.update(dict.fromkeys(exact, 1.0))
    return best


def precision_rows(
    data: Dataset, ours: Run, dt: dict, sample: int, copies: int
) -> tuple[list[str], float | None, float | None]:
    digests = row_keys(data.parquet)
    all_keys = set(digests)
    ours_dropped = all_keys - kept_keys(ours.out_dir)
    theirs = set(dt["removed"]) & all_keys
    rng = random.Random(0)

    def pick(group: set[str]) -> list[str]:
        return sorted(rng.sample(sorted(group), min(sample, len(group))))

    groups = {
        "ours": ours_dropped,
        "datatrove": theirs,
        "only ours": ours_dropped - theirs,
        "only datatrove": theirs - ours_dropped,
    }
    samples = {label: pick(group) for label, group in groups.items()}
    best = confirm(data.parquet, samples, copies, digests)
    confirmed = {label: sum(best[k] >= THRESHOLD for k in keys) for label, keys in samples.items()}
    lines = [
        f"Near-dedup drops on the same {len(all_keys):,} rows with text (exact duplicates included on both "
        f"sides); a drop is confirmed when another document is at exact Jaccard >= {THRESHOLD} (5-gram word "
        "shingles): an exact copy anywhere, else "
        f"looked for in its family (the same file in the other copies), then among up to {SECOND_LOOK} files "
        "of the same name in the same package (so the share confirmed is a lower bound):",
        "",
        "| drops | count | sampled | confirmed | share confirmed | unconfirmed: median best Jaccard found |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    shares = {}
    for label, group in groups.items():
        n = len(samples[label])
        shares[label] = confirmed[label] / n if n else None
        share = f"{shares[label]:.3f}" if n else "-"
        low = sorted(best[k] for k in samples[label] if best[k] < THRESHOLD)
        median = f"{low[len(low) // 2]:.2f}" if low else "-"
        lines.append(f"| {label} | {len(group):,} | {n:,} | {confirmed[label]:,} | {share} | {median} |")
    both = len(ours_dropped & theirs)
    lines += ["", f"Both drop {both:,}."]
    return lines, shares["ours"], shares["datatrove"]


# --------------------------------------------------------------------------------------------- the bench


def goal(rows: list[str], name: str, value: float | None, fmt: str, target: str, ok: bool | None) -> None:
    shown = "n/a" if value is None else format(value, fmt)
    verdict = "n/a" if value is None or ok is None else ("PASS" if ok else "**FAIL**")
    rows.append(f"| {name} | {shown} | {target} | {verdict} |")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=SITE_PACKAGES, help="folder of .py files copied")
    parser.add_argument(
        "--code", type=Path, default=REPO, help="the checkout whose gitnetic runs (default: this one)"
    )
    parser.add_argument(
        "--data_dir",
        type=Path,
        default=Path("/tmp/gitnetic-bench/stack"),
        help="cache of built datasets (default: %(default)s)",
    )
    parser.add_argument("--copies", type=int, default=4, help="copies of the files (default 4)")
    parser.add_argument("--copy_mb", type=float, default=0, help="MB of files per copy; 0 = all (default)")
    parser.add_argument("--edit_fraction", type=float, default=0.5, help="files edited in copies 1.. (0.5)")
    parser.add_argument("--files_per_copy", type=int, default=2, help="Parquet files per copy (default 2)")
    parser.add_argument("--row_group_rows", type=int, default=1000, help="rows per row group (default 1000)")
    parser.add_argument("--quick", action="store_true", help="a small dataset: --copies 2 --copy_mb 20")
    parser.add_argument("--workers", type=int, default=2, help="processes of datatrove and of the stage")
    parser.add_argument("--repeats", type=int, default=1, help="runs per configuration; best wall kept")
    parser.add_argument(
        "--skip", default="", help="comma list of parts to leave out: minhash, jsonl, rss, precision"
    )
    parser.add_argument(
        "--datatrove_venv",
        type=Path,
        default=None,
        help="venv with datatrove, made when missing (default: DATA_DIR/../dtvenv)",
    )
    parser.add_argument("--precision_sample", type=int, default=200, help="drops checked per group")
    parser.add_argument("--build_only", action="store_true", help="build (or find) the dataset and stop")
    parser.add_argument("--work_dir", type=Path, default=None, help="parent of the scratch folder")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (outputs, logs)")
    args = parser.parse_args()
    if args.quick:
        args.copies, args.copy_mb = 2, args.copy_mb or 20
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    unknown = args.skip - {"minhash", "jsonl", "rss", "precision"}
    if unknown:
        parser.error(f"--skip: unknown part(s) {sorted(unknown)}; use minhash, jsonl, rss, precision")
    if args.copies < 1 or args.files_per_copy < 1 or args.row_group_rows < 1:
        parser.error("--copies, --files_per_copy and --row_group_rows must be >= 1")
    if not args.corpus.is_dir():
        parser.error(f"--corpus {args.corpus} is not a folder; pass a folder of .py files")
    args.datatrove_venv = args.datatrove_venv or args.data_dir.parent / "dtvenv"
    return args


def main() -> None:
    args = parse_args()
    data = build(args)
    print(
        f"dataset: {data.rows:,} rows, {data.content_mb:.1f} MB of content, {data.files} Parquet files "
        f"({disk_mb(data.parquet):.1f} MB on disk), JSONL.gz {disk_mb(data.jsonl):.1f} MB",
        flush=True,
    )
    if args.build_only:
        return
    python = ensure_datatrove(args.datatrove_venv)
    for folder in (data.parquet, data.jsonl):
        warm(folder)
    cores = len(os.sched_getaffinity(0))
    if args.work_dir:
        Path(args.work_dir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dataset_source-", dir=args.work_dir))
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load0 = os.getloadavg()[0]
    print(f"dataset_source: scratch {work}; load average at start {load0:.1f}", flush=True)
    parquet = {"type": "parquet", "path": str(data.parquet), "languages": ["Python"], "licenses": ALLOWED}
    bare = {"neardup": {"enabled": False}}
    clean = {"filters": {"enabled": True}, "redact": {"secrets": True, "emails": True}}
    nd_on = {"neardup": {"enabled": True}}
    runs: dict[str, Run] = {}
    dt_min: dict = {}
    try:
        bench = Bench(args, work, data)
        runs["dt_copy"], _ = bench.datatrove(
            f"datatrove ParquetReader -> JsonlWriter ({args.workers} workers)", python, "copy", data.parquet
        )
        runs["dt_text"], _ = bench.datatrove(
            "datatrove, the same reading only content + id (no metadata)",
            python,
            "copy",
            data.parquet,
            ("--text_only",),
        )
        runs["pyarrow"] = pyarrow_read(data.parquet)
        runs["none"] = bench.gitnetic("gitnetic, no cleaning", {**parquet, "clean": False}, bare)
        runs["clean"] = bench.gitnetic(
            "gitnetic, filters + redaction + exact dedup", parquet, {**clean, **bare}
        )
        runs["full"] = bench.gitnetic("gitnetic, + near-dedup", parquet, {**clean, **nd_on})
        if "jsonl" not in args.skip:
            jsonl = {**parquet, "type": "jsonl", "path": str(data.jsonl), "clean": False}
            runs["jsonl"] = bench.gitnetic("gitnetic, no cleaning, JSONL.gz source", jsonl, bare)
        if "rss" not in args.skip and args.copies > 1:
            one = {**parquet, "path": str(data.parquet_1x)}
            runs["full_1x"] = bench.gitnetic("gitnetic, + near-dedup, 1x (copy 0)", one, {**clean, **nd_on})
        if "minhash" not in args.skip:
            off = {"filters": {"enabled": False}, "redact": {"secrets": False, "emails": False}}
            runs["nd_only"] = bench.gitnetic(
                "gitnetic, near-dedup only",
                parquet,
                {**off, **nd_on},
                keep_output="precision" not in args.skip,
            )
            runs["dt_minhash"], dt_min = bench.datatrove(
                f"datatrove MinHash, 16x8 like ours ({args.workers} workers)", python, "minhash", data.parquet
            )
        lines, goals = report(args, data, runs, dt_min, cores, bench.docs)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    ended = time.strftime("%H:%M UTC", time.gmtime())
    print(
        f"\n{started} to {ended}; load average {load0:.1f} at the start, {os.getloadavg()[0]:.1f} at the end\n"
    )
    print("\n".join([*lines, "", *goals]))


def content_mb(folder: Path) -> float:
    return (
        sum(pq.read_table(p, columns=["size"])["size"].to_numpy().sum() for p in folder.glob("*.parquet"))
        / MB
    )


def report(
    args: argparse.Namespace,
    data: Dataset,
    runs: dict[str, Run],
    dt_min: dict,
    cores: int,
    docs_out: dict[str, int],
) -> tuple[list[str], list[str]]:
    base = runs["dt_copy"].wall_s
    mb = data.content_mb
    one_x_mb = content_mb(data.parquet_1x)
    lines = [
        f"Dataset: {data.rows:,} rows, {mb:.1f} MB of content in {data.files} Parquet files "
        f"({disk_mb(data.parquet):.1f} MB; JSONL.gz {disk_mb(data.jsonl):.1f} MB); {cores} cores; "
        f"--workers {args.workers}",
        "",
        "| run | wall s | MB/s | x datatrove reader -> writer | documents out | peak RSS MiB (tree) "
        "| largest process MiB | processes |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, run in runs.items():
        size = one_x_mb if key == "full_1x" else mb
        rss = "-" if key == "pyarrow" else f"{run.peak_tree_mb:.0f}"
        one = "-" if key == "pyarrow" else f"{run.peak_one_mb:.0f}"
        procs = 1 if key == "pyarrow" else run.processes
        docs = f"{docs_out[run.label]:,}" if run.label in docs_out else "-"
        lines.append(
            f"| {run.label} | {run.wall_s:.1f} | {size / run.wall_s:.1f} | {run.wall_s / base:.2f} | {docs} "
            f"| {rss} | {one} | {procs} |"
        )
    if dt_min.get("stage_s"):
        shares = ", ".join(f"{name} {sec:.1f}" for name, sec in dt_min["stage_s"].items())
        lines += ["", f"datatrove MinHash, wall s per stage (worker pools' start-up included): {shares}"]
    rows = ["| goal | measured | target | verdict |", "|---|---:|---|---|"]

    def ratio(key: str) -> float | None:
        return runs[key].wall_s / base if key in runs else None

    goal(
        rows,
        "pyarrow `content` read / datatrove reader -> writer",
        ratio("pyarrow"),
        ".2f",
        "(reported)",
        None,
    )
    value = runs["none"].wall_s / runs["dt_text"].wall_s
    goal(rows, "gitnetic no cleaning / datatrove reading content + id only", value, ".2f", "(reported)", None)
    for key, name, limit in (
        ("none", "no cleaning", 1.2),
        ("clean", "filters + redaction + exact dedup", 2.0),
        ("full", "+ near-dedup", 3.0),
    ):
        value = ratio(key)
        goal(
            rows,
            f"gitnetic {name} / datatrove reader -> writer",
            value,
            ".2f",
            f"<= {limit}",
            value is not None and value <= limit,
        )
    if "dt_minhash" in runs:
        for key, name in (("full", "+ near-dedup (whole cleaning)"), ("nd_only", "near-dedup only")):
            value = runs[key].wall_s / runs["dt_minhash"].wall_s
            goal(rows, f"gitnetic {name} / datatrove MinHash", value, ".2f", "< 1", value < 1)
    if "jsonl" in runs:
        value = runs["jsonl"].wall_s / runs["none"].wall_s
        goal(rows, "JSONL.gz source / Parquet source (no cleaning)", value, ".2f", "(reported)", None)
    if "full_1x" in runs:
        value = runs["full"].peak_tree_mb / runs["full_1x"].peak_tree_mb
        goal(
            rows,
            f"peak RSS (tree) at {args.copies}x / at 1x (+ near-dedup)",
            value,
            ".2f",
            "<= 1.5",
            value <= 1.5,
        )
    if "precision" not in args.skip and "nd_only" in runs and dt_min:
        plines, ours, theirs = precision_rows(
            data, runs["nd_only"], dt_min, args.precision_sample, args.copies
        )
        lines += ["", *plines]
        if ours is not None and theirs is not None:
            goal(
                rows,
                "near-dedup precision (sampled): ours",
                ours,
                ".3f",
                f">= datatrove's {theirs:.3f}",
                ours >= theirs,
            )
    return lines, rows


if __name__ == "__main__":
    main()
