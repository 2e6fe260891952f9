"""The benchmark stage: generate completions (resumable), run them in the sandbox, score pass@k.

``python -m gitnetic benchmark`` and the pipeline's ``benchmark`` stage call :func:`benchmark`. Outputs,
all under ``output_dir`` except the metrics: ``generations.jsonl`` (and one ``infill-<set>.jsonl`` per
infilling set, human-eval-infilling's samples format) as written by :mod:`gitnetic.benchmark.samples`,
``results.jsonl`` (one line per sample: status passed / failed / timed out and the error's last line),
and the metrics JSON (``pass@k`` for each asked ``k`` no larger than ``n_samples``; under ``infill``, per
set, pass@k for each ``k`` no larger than ``infill_samples`` and exact match; counts and the decoding
config). Generations of another config are not overwritten: they move, with their results and metrics,
to ``previous-N/`` (:mod:`gitnetic.benchmark.previous`), and only once the new model has loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from gitnetic.benchmark.infill import InfillSet, InfillTask, evenly_spread, read_infill_set
from gitnetic.benchmark.params import BenchmarkParams, SandboxParams
from gitnetic.benchmark.pass_at_k import pass_at_k_table
from gitnetic.benchmark.previous import set_aside
from gitnetic.benchmark.prompts import STOP_SEQUENCES, model_prompt
from gitnetic.benchmark.samples import SampleStore, read_samples
from gitnetic.benchmark.sandbox import Outcome, Sandbox
from gitnetic.common.errors import DataError
from gitnetic.common.io import atomic_open
from gitnetic.data.problems import Problem, read_problems

__all__ = ["benchmark"]

logger = logging.getLogger(__name__)

GENERATIONS, RESULTS = "generations.jsonl", "results.jsonl"


def infill_file(name: str) -> str:
    """The generations file of one infilling set (human-eval-infilling's samples format)."""
    return f"infill-{name}.jsonl"


@dataclass(frozen=True)
class _Infill:
    """One infilling set as this run scores it: the whole set, and the tasks ``--infill_limit`` keeps."""

    full: InfillSet
    tasks: tuple[InfillTask, ...]

    @cached_property
    def seed_index(self) -> dict[str, int]:
        """Each task's place in the whole set: its seed does not move with ``--infill_limit``."""
        return {t.task_id: i for i, t in enumerate(self.full.tasks)}


def _infill_sets(params: BenchmarkParams) -> list[_Infill]:
    if not params.infill:
        return []
    sets = [read_infill_set(spec) for spec in params.infill_sets]
    return [_Infill(s, evenly_spread(s.tasks, params.infill_limit)) for s in sets]


def _fingerprint(path: str) -> str:
    """Names, sizes and mtimes of the model's files: a changed model starts the generations afresh."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    digest = hashlib.sha256()
    for p in files:
        stat = p.stat()
        digest.update(
            f"{p.relative_to(root) if root.is_dir() else p.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode()
        )
    return digest.hexdigest()[:16]


def _config(params: BenchmarkParams, problems: list[Problem], kind: str) -> dict[str, Any]:
    problem_digest = hashlib.sha256("".join(p.task_id + p.prompt for p in problems).encode()).hexdigest()
    config: dict[str, Any] = {
        "kind": kind,
        "model": params.model,
        "model_fingerprint": _fingerprint(params.model) if Path(params.model).exists() else None,
        "problems": params.problems,
        "problems_digest": problem_digest[:16],
        "max_new_tokens": params.max_new_tokens,
        "seed": params.seed,
    }
    if kind == "complete":
        config.update(
            prompt_mode=params.prompt_mode,
            temperature=params.temperature,
            top_p=params.top_p,
            top_k=params.top_k,
            batch_size=params.batch_size or params.n_samples,
            stop_sequences=list(STOP_SEQUENCES),
        )
    return config


def _infill_config(params: BenchmarkParams, infill: _Infill) -> dict[str, Any]:
    """Everything that decides an infilling set's middles (not ``--infill_limit``: it picks tasks)."""
    config: dict[str, Any] = {
        "kind": "infill",
        "model": params.model,
        "model_fingerprint": _fingerprint(params.model) if Path(params.model).exists() else None,
        "infill_set": infill.full.name,
        "infill_set_digest": infill.full.digest,
        "single_line": infill.full.single_line,
        "max_new_tokens": params.max_new_tokens,
        "seed": params.seed,
        "temperature": params.infill_temperature,
        "batch_size": params.batch_size or params.infill_samples,
    }
    if params.infill_temperature > 0:
        config.update(top_p=params.top_p, top_k=params.top_k)
    return config


def _generate(params: BenchmarkParams, problems: list[Problem], sets: list[_Infill]) -> None:
    """Fill the generations files; the model is loaded only when something is missing."""
    from tqdm import tqdm

    from gitnetic.benchmark.generation import Decoding, SampleGenerator, batch_seed

    out = Path(params.output_dir)
    store = SampleStore(out / GENERATIONS, _config(params, problems, "complete"))
    infill_stores = [SampleStore(out / infill_file(s.full.name), _infill_config(params, s)) for s in sets]
    batch = params.batch_size or params.n_samples
    todo = [
        (t, p, list(range(s, min(s + batch, params.n_samples))))
        for t, p in enumerate(problems)
        for s in range(0, params.n_samples, batch)
        if store.missing(p.task_id, range(s, min(s + batch, params.n_samples)))
    ]
    infill_batch = params.batch_size or params.infill_samples
    infill_todo = [
        (infill, infill_store, task, list(range(s, min(s + infill_batch, params.infill_samples))))
        for infill, infill_store in zip(sets, infill_stores, strict=True)
        for task in infill.tasks
        for s in range(0, params.infill_samples, infill_batch)
        if infill_store.missing(task.task_id, range(s, min(s + infill_batch, params.infill_samples)))
    ]
    if not todo and not infill_todo:
        return
    # the model loads before anything in the output folder changes: a wrong --model changes nothing
    generator = SampleGenerator(params.model, params.config_path, params.tokenizer_path, params.device)
    stores = [store, *infill_stores]
    _set_aside(params, [s.path for s in stores if s.stale])
    for s in stores:
        s.open()
    decoding = Decoding(params.max_new_tokens, params.temperature, params.top_p, params.top_k)
    for t, problem, samples in tqdm(todo, desc="generate", unit="batch", disable=None):
        prompt = model_prompt(problem.prompt, params.prompt_mode)
        texts = generator.complete(prompt, len(samples), decoding, batch_seed(params.seed, t, samples[0]))
        store.append(problem.task_id, dict(zip(samples, texts, strict=True)))
    infill_decoding = Decoding(params.max_new_tokens, params.infill_temperature, params.top_p, params.top_k)
    for infill, infill_store, task, samples in tqdm(infill_todo, desc="infill", unit="batch", disable=None):
        seed = batch_seed(params.seed, infill.seed_index[task.task_id], samples[0])
        middles = generator.infill(
            task.prompt, task.suffix, len(samples), infill_decoding, seed, infill.full.single_line
        )
        infill_store.append(task.task_id, dict(zip(samples, middles, strict=True)))
    if generator.truncated_prompts:
        logger.warning(
            "benchmark: %d prompts were longer than the model's context and lost their start",
            generator.truncated_prompts,
        )


def _set_aside(params: BenchmarkParams, stale: list[Path]) -> None:
    """Generations of another config move, with the results and metrics scored from them, to
    ``previous-N/`` (see :mod:`gitnetic.benchmark.previous`); the generations files last."""
    if not stale:
        return
    out = Path(params.output_dir)
    folder = set_aside(out, [out / RESULTS, Path(params.metrics), *stale])
    logger.warning(
        "benchmark: %s held generations of another config (model, problems or decoding flags); moved "
        "them, with the results and metrics scored from them, to %s",
        " and ".join(map(str, stale)),
        folder,
    )


def _records(path: Path, known: dict[str, Any], what: str, source: str) -> list[dict[str, Any]]:
    records = read_samples(path)
    unknown = sorted({r["task_id"] for r in records} - set(known))
    if unknown:
        raise DataError(
            f"{path} has {what} {unknown[0]!r} that {source} does not hold; pass the {source} it was "
            "generated from"
        )
    return records


def _execute(
    params: BenchmarkParams, problems: list[Problem], sets: list[_Infill], sandbox_params: SandboxParams
) -> dict[str, Any]:
    from tqdm import tqdm

    out = Path(params.output_dir)
    by_id = {p.task_id: p for p in problems}
    records = _records(out / GENERATIONS, by_id, "task_id", "--problems (with --limit)")
    programs = [
        by_id[r["task_id"]].program(
            r["completion"],
            model_prompt(by_id[r["task_id"]].prompt, (r.get("config") or {}).get("prompt_mode", "none")),
        )
        for r in records
    ]
    infill_records: list[list[dict[str, Any]]] = []
    for infill in sets:
        known = {t.task_id: t for t in infill.full.tasks}
        chosen = {t.task_id for t in infill.tasks}
        path = out / infill_file(infill.full.name)
        kept = [
            r for r in _records(path, known, "infilling task", "--infill_sets file") if r["task_id"] in chosen
        ]
        infill_records.append(kept)
        programs += [known[r["task_id"]].program(r["completion"]) for r in kept]
    with Sandbox(sandbox_params) as sandbox:
        outcomes = list(
            tqdm(sandbox.map(programs), total=len(programs), desc="execute", unit="sample", disable=None)
        )
        mode = sandbox.mode
    return _score(params, records, sets, infill_records, outcomes, mode)


def _score(
    params: BenchmarkParams,
    records: list[dict[str, Any]],
    sets: list[_Infill],
    infill_records: list[list[dict[str, Any]]],
    outcomes: list[Outcome],
    mode: str,
) -> dict[str, Any]:
    out = Path(params.output_dir)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    statuses: dict[str, int] = defaultdict(int)
    rows = [(r, {"kind": "complete"}) for r in records]
    rows += [
        (r, {"kind": "infill", "set": s.full.name})
        for s, rs in zip(sets, infill_records, strict=True)
        for r in rs
    ]
    with atomic_open(out / RESULTS) as fh:
        for (r, kind), o in zip(rows, outcomes, strict=True):
            row = {"task_id": r["task_id"], "sample": r.get("sample", 0), **kind, "status": o.status,
                   "passed": o.passed, "result": o.detail}  # fmt: skip
            fh.write(json.dumps(row) + "\n")
    for r, o in zip(records, outcomes, strict=False):
        counts[r["task_id"]][0] += 1
        counts[r["task_id"]][1] += int(o.passed)
        statuses[o.status] += 1
    scores = pass_at_k_table([tuple(v) for v in counts.values()], params.k)
    short = [k for k in sorted(set(params.k)) if k <= params.n_samples and f"pass@{k}" not in scores]
    if short and counts:
        logger.warning(
            "benchmark: no pass@%s: some problems have only %d samples in %s; generate the rest (rerun "
            "without --execute_only)",
            ", pass@".join(map(str, short)),
            min(n for n, _ in counts.values()),
            out / GENERATIONS,
        )
    metrics: dict[str, Any] = {
        "problems": params.problems,
        "scored_problems": len(counts),
        "samples": len(records),
        **scores,
        "timed_out": statuses["timed out"],
        "sandbox": mode,
        "prompt_mode": params.prompt_mode,
        "temperature": params.temperature,
        "n_samples": params.n_samples,
        "max_new_tokens": params.max_new_tokens,
    }
    if sets:
        metrics.update(infill_samples=params.infill_samples, infill_temperature=params.infill_temperature)
        metrics["infill"] = _infill_scores(params, sets, infill_records, outcomes[len(records) :])
    return metrics


def _infill_scores(
    params: BenchmarkParams, sets: list[_Infill], records: list[list[dict[str, Any]]], outcomes: list[Outcome]
) -> dict[str, dict[str, Any]]:
    """Per set: pass@k (human-eval-infilling's estimator, over tasks), exact match (over middles)."""
    scores: dict[str, dict[str, Any]] = {}
    start = 0
    for infill, set_records in zip(sets, records, strict=True):
        set_outcomes = outcomes[start : start + len(set_records)]
        start += len(set_records)
        if not set_records:
            logger.warning("benchmark: no middles of %s to score; generate them first", infill.full.name)
            continue
        middles = {t.task_id: t.canonical_solution for t in infill.tasks}
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for r, o in zip(set_records, set_outcomes, strict=True):
            counts[r["task_id"]][0] += 1
            counts[r["task_id"]][1] += int(o.passed)
        exact = sum(r["completion"].strip() == middles[r["task_id"]].strip() for r in set_records)
        scores[infill.full.name] = {
            "tasks": len(counts),
            "set_tasks": len(infill.full.tasks),
            **pass_at_k_table([(n, c) for n, c in counts.values()], params.k),
            "exact_match": exact / len(set_records),
            "timed_out": sum(o.status == "timed out" for o in set_outcomes),
        }
    return scores


def benchmark(params: BenchmarkParams, sandbox_params: SandboxParams | None = None) -> dict[str, Any]:
    """Run the stage; returns the metrics (also written to ``params.metrics`` unless generating only)."""
    problems = read_problems(params.problems)
    if params.limit:
        problems = problems[: params.limit]
    sets = _infill_sets(params)
    if not params.execute_only:
        _generate(params, problems, sets)
    if params.generate_only:
        return {}
    metrics = _execute(params, problems, sets, sandbox_params or SandboxParams())
    with atomic_open(params.metrics) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    return metrics
