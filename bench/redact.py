"""Corpus redaction: recall by secret, false positives per MB of clean code, and cost, against the
previous (detect-secrets based) redactor measured in the same run.

Workload:

* **planted**: ``tests/secret_samples.py``'s formats x contexts (45 credential formats: cloud, VCS,
  payment, chat, AI providers, registries, messaging, JWT, private keys, database URLs and connection
  strings, generic name + value secrets; each in a Python assignment, dict literal, function argument,
  YAML, JSON, ``.env``, TOML, URL, comment and diff line), ``--per_pair`` fresh secrets per pair.
  A secret counts as caught only if no run of 8 of its characters survives in the redacted document.
* **clean**: this Python's standard library as the ``stdlib`` source reads it (no planted secrets; the
  stdlib holds no real credentials). Every secret finding there is a false positive (e-mail addresses
  are real ones and are reported apart).

Reported: recall overall and per format for the current redactor and the baseline (``gitnetic/data/
redact.py`` at ``--baseline_rev``, loaded from git), the generic detector's entropy threshold swept over
``--thresholds`` (recall on the generic formats vs false positives on the stdlib: how the default was
chosen), redaction time per MB of the stdlib for both redactors (interleaved, best of ``--repeats``),
and the corpus stage's wall time on the stdlib with redaction on vs off (the same run, best of
``--repeats``; quality filters and near-dedup on, as for any cleaned source).

Run: ``python bench/redact.py`` (prints Markdown; nothing is asserted).
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.git_baseline import git_exists, git_show  # noqa: E402
from gitnetic.data.corpus.params import CorpusParams, RedactParams  # noqa: E402
from gitnetic.data.corpus.redact.generic import ENTROPY_THRESHOLD  # noqa: E402
from gitnetic.data.corpus.redact.redactor import Redactor  # noqa: E402
from gitnetic.data.corpus.sources import open_source  # noqa: E402
from gitnetic.data.corpus.sources.params import SourceParams  # noqa: E402
from gitnetic.data.corpus.stage import collect_corpus  # noqa: E402
from tests.secret_samples import FORMATS, leaked, placeholders, planted  # noqa: E402

GENERIC_FORMATS = {f.name for f in FORMATS if f.style in ("named", "dsn")}


def load_baseline(rev: str) -> type:
    """The ``Redactor`` class of ``gitnetic/data/corpus/redact/redactor.py`` at ``rev`` (self-contained module)."""
    path = "gitnetic/data/corpus/redact/redactor.py"
    source = git_show(rev, path if git_exists(rev, path) else "gitnetic/data/redact.py")  # before the move
    path = Path(tempfile.mkdtemp()) / "baseline_redact.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("baseline_redact", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["baseline_redact"] = module
    spec.loader.exec_module(module)
    return module.Redactor


def stdlib_texts() -> list[tuple[str, str]]:
    texts = []
    with open_source(SourceParams(name="stdlib", type="stdlib")) as opened:
        for cand in opened.candidates:
            try:
                texts.append((cand.key, cand.read().decode("utf-8")))
            except UnicodeDecodeError:
                continue
    return texts


def recall(redactor, docs) -> tuple[float, dict[str, list[int]], list]:
    by_format: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    misses = []
    for doc in docs:
        out, _ = redactor.redact(doc.text)
        caught = not leaked(doc.secret, out)
        by_format[doc.format][0] += caught
        by_format[doc.format][1] += 1
        if not caught:
            misses.append((doc.format, doc.context))
    total = sum(c for c, _ in by_format.values()) / sum(n for _, n in by_format.values())
    return total, by_format, misses


def false_positives(redactor, texts) -> tuple[int, int, list[str]]:
    """(secret findings, e-mail findings, a line per secret finding)."""
    secrets = emails = 0
    where = []
    for path, text in texts:
        out, counts = redactor.redact(text)
        emails += counts.get("email", 0)
        found = {k: n for k, n in counts.items() if k != "email"}
        if found:
            secrets += sum(found.values())
            where.append(f"{path}: {found}")
    return secrets, emails, where


def time_per_mb(redactor, texts, mb: float) -> float:
    start = time.perf_counter()
    for _, text in texts:
        redactor.redact(text)
    return (time.perf_counter() - start) / mb * 1000


def stage_seconds(redact: bool, out: Path) -> float:
    params = CorpusParams(
        sources=[{"name": "stdlib", "type": "stdlib", "clean": True, "max_bytes": 0}],
        redact=RedactParams(secrets=redact, emails=redact),
        out_dir=str(out),
    )
    start = time.perf_counter()
    collect_corpus(params)
    return time.perf_counter() - start


def report_recall(current, baseline, rev: str, docs, texts, mb: float) -> None:
    rec_new, fmt_new, misses_new = recall(current, docs)
    rec_old, fmt_old, _ = recall(baseline, docs)
    fp_new, em_new, where_new = false_positives(current, texts)
    fp_old, em_old, where_old = false_positives(baseline, texts)
    print("| redactor | recall by secret | secret findings on the stdlib | per 10 MB | e-mails |")
    print("|---|---:|---:|---:|---:|")
    print(f"| current | {rec_new:.4f} | {fp_new} | {fp_new / mb * 10:.2f} | {em_new} |")
    print(f"| baseline ({rev}) | {rec_old:.4f} | {fp_old} | {fp_old / mb * 10:.2f} | {em_old} |")
    print("\nfalse positives (current):", *where_new or ["none"], sep="\n  ")
    print("false positives (baseline):", *where_old or ["none"], sep="\n  ")
    print("missed (current):", *[f"{f} in {c}" for f, c in misses_new] or ["none"], sep="\n  ")
    print("\n| format | current | baseline |")
    print("|---|---:|---:|")
    for fmt in FORMATS:
        (c, n), (o, _) = fmt_new[fmt.name], fmt_old[fmt.name]
        print(f"| {fmt.name} | {c}/{n} | {o}/{n} |")


def report_thresholds(thresholds: list[float], docs, texts, mb: float) -> None:
    negatives = list(placeholders())
    print(f"\nGeneric-secret entropy threshold (default {ENTROPY_THRESHOLD}); placeholders: {len(negatives)} "
          "documents, each a placeholder value under a secret's name in one of the 10 contexts:\n")  # fmt: skip
    print(
        "| threshold | recall, generic formats | recall, all | placeholders redacted | stdlib false positives "
        "| per 10 MB |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    generic_docs = [d for d in docs if d.format in GENERIC_FORMATS]
    for threshold in thresholds:
        r = Redactor(generic_entropy=threshold, emails=False)
        fp, _, _ = false_positives(r, texts)
        redacted = sorted({value for value, doc in negatives if r.redact(doc)[1]})
        print(
            f"| {threshold:g} | {recall(r, generic_docs)[0]:.4f} | {recall(r, docs)[0]:.4f} | "
            f"{len(redacted)}/{len(set(v for v, _ in negatives))} {' '.join(redacted)} | {fp} | {fp / mb * 10:.2f} |"
        )


def report_cost(current, baseline, rev: str, texts, mb: float, repeats: int) -> None:
    best_new = best_old = float("inf")
    for _ in range(repeats):  # interleaved, so both see the same load
        best_old = min(best_old, time_per_mb(baseline, texts, mb))
        best_new = min(best_new, time_per_mb(current, texts, mb))
    print(f"\n| redaction alone (stdlib) | ms per MB (best of {repeats}) |")
    print("|---|---:|")
    print(f"| baseline ({rev}) | {best_old:.1f} |")
    print(f"| current | {best_new:.1f} |")
    print(f"| current / baseline | {best_new / best_old:.2f}x |")
    on = off = float("inf")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(repeats):
            off = min(off, stage_seconds(False, Path(tmp) / f"off{i}"))
            on = min(on, stage_seconds(True, Path(tmp) / f"on{i}"))
    print(f"\n| corpus stage, stdlib cleaned ({mb:.1f} MB) | wall s (best of {repeats}) |")
    print("|---|---:|")
    print(f"| redaction off | {off:.2f} |")
    print(f"| redaction on | {on:.2f} |")
    print(f"| on / off | {on / off:.3f}x (+{(on - off) / mb * 1000:.0f} ms per MB) |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--per_pair", type=int, default=1, help="secrets per (format, context) pair")
    ap.add_argument("--baseline_rev", default="main", help="git revision of the baseline redact.py")
    ap.add_argument(
        "--thresholds", type=float, nargs="*", default=[2.5, 2.75, 3.0, 3.1, 3.2, 3.3, 3.4, 3.5, 3.75, 4.0]
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    docs = list(planted(args.seed, args.per_pair))
    texts = stdlib_texts()
    mb = sum(len(t.encode("utf-8")) for _, t in texts) / 1e6
    current, baseline = Redactor(), load_baseline(args.baseline_rev)()
    print(
        f"planted: {len(docs)} secrets, {len(FORMATS)} formats; clean: stdlib, {len(texts)} files, {mb:.1f} MB\n"
    )
    report_recall(current, baseline, args.baseline_rev, docs, texts, mb)
    report_thresholds(args.thresholds, docs, texts, mb)
    report_cost(current, baseline, args.baseline_rev, texts, mb, args.repeats)


if __name__ == "__main__":
    main()
