"""The benchmark stage: generate completions (resumable), run them in the sandbox, score pass@k.

``python -m gitnetic benchmark`` and the pipeline's ``benchmark`` stage call :func:`benchmark`. Outputs,
all under ``output_dir`` except the metrics: ``generations.jsonl`` (and ``infill.jsonl``) as written by
:mod:`gitnetic.benchmark.samples`, ``results.jsonl`` (one line per sample: status passed / failed /
timed out and the error's last line), and the metrics JSON (``pass@k`` for each asked ``k`` no larger
than ``n_samples``, infilling pass@1 and exact match, counts and the decoding config). Generations of
another config are not overwritten: they move, with their results and metrics, to ``previous-N/``
(:mod:`gitnetic.benchmark.previous`), and only once the new model has loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from gitnetic.benchmark.infill import InfillTask, infill_tasks
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

GENERATIONS, INFILL, RESULTS = "generations.jsonl", "infill.jsonl", "results.jsonl"


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


def _generate(params: BenchmarkParams, problems: list[Problem], tasks: list[InfillTask]) -> None:
    """Fill the generations files; the model is loaded only when something is missing."""
    from tqdm import tqdm

    from gitnetic.benchmark.generation import Decoding, SampleGenerator, batch_seed

    out = Path(params.output_dir)
    store = SampleStore(out / GENERATIONS, _config(params, problems, "complete"))
    infill_store = SampleStore(out / INFILL, _config(params, problems, "infill")) if params.infill else None
    batch = params.batch_size or params.n_samples
    todo = [
        (t, p, list(range(s, min(s + batch, params.n_samples))))
        for t, p in enumerate(problems)
        for s in range(0, params.n_samples, batch)
        if store.missing(p.task_id, range(s, min(s + batch, params.n_samples)))
    ]
    infill_todo = [
        (i, task) for i, task in enumerate(tasks) if infill_store and infill_store.missing(task.task_id, [0])
    ]
    if not todo and not infill_todo:
        return
    # the model loads before anything in the output folder changes: a wrong --model changes nothing
    generator = SampleGenerator(params.model, params.config_path, params.tokenizer_path, params.device)
    stores = [s for s in (store, infill_store) if s is not None]
    _set_aside(params, [s.path for s in stores if s.stale])
    for s in stores:
        s.open()
    decoding = Decoding(params.max_new_tokens, params.temperature, params.top_p, params.top_k)
    for t, problem, samples in tqdm(todo, desc="generate", unit="batch", disable=None):
        prompt = model_prompt(problem.prompt, params.prompt_mode)
        texts = generator.complete(prompt, len(samples), decoding, batch_seed(params.seed, t, samples[0]))
        store.append(problem.task_id, dict(zip(samples, texts, strict=True)))
    greedy = Decoding(params.max_new_tokens, 0.0, 1.0, 0)
    for i, task in tqdm(infill_todo, desc="infill", unit="task", disable=None):
        assert infill_store is not None
        middle = generator.infill(task.prefix, task.suffix, greedy, batch_seed(params.seed, i, 0))
        infill_store.append(task.task_id, {0: middle})
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


def _records(path: Path, known: dict[str, Any], what: str) -> list[dict[str, Any]]:
    records = read_samples(path)
    unknown = sorted({r["task_id"] for r in records} - set(known))
    if unknown:
        raise DataError(
            f"{path} has {what} {unknown[0]!r} that --problems (with --limit) does not hold; pass the "
            "problems it was generated from"
        )
    return records


def _execute(
    params: BenchmarkParams, problems: list[Problem], tasks: list[InfillTask], sandbox_params: SandboxParams
) -> dict[str, Any]:
    from tqdm import tqdm

    out = Path(params.output_dir)
    by_id = {p.task_id: p for p in problems}
    records = _records(out / GENERATIONS, by_id, "task_id")
    programs = [
        by_id[r["task_id"]].program(
            r["completion"],
            model_prompt(by_id[r["task_id"]].prompt, (r.get("config") or {}).get("prompt_mode", "none")),
        )
        for r in records
    ]
    infill_records: list[dict[str, Any]] = []
    if params.infill:
        task_by_id = {t.task_id: t for t in tasks}
        infill_records = _records(out / INFILL, task_by_id, "infill task")
        programs += [task_by_id[r["task_id"]].program(r["completion"]) for r in infill_records]
    with Sandbox(sandbox_params) as sandbox:
        outcomes = list(
            tqdm(sandbox.map(programs), total=len(programs), desc="execute", unit="sample", disable=None)
        )
        mode = sandbox.mode
    return _score(params, problems, records, infill_records, tasks, outcomes, mode)


def _score(
    params: BenchmarkParams,
    problems: list[Problem],
    records: list[dict[str, Any]],
    infill_records: list[dict[str, Any]],
    tasks: list[InfillTask],
    outcomes: list[Outcome],
    mode: str,
) -> dict[str, Any]:
    out = Path(params.output_dir)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    statuses: dict[str, int] = defaultdict(int)
    with atomic_open(out / RESULTS) as fh:
        kinds = ["complete"] * len(records) + ["infill"] * len(infill_records)
        for r, kind, o in zip(records + infill_records, kinds, outcomes, strict=True):
            row = {
                "task_id": r["task_id"],
                "sample": r.get("sample", 0),
                "kind": kind,
                "status": o.status,
                "passed": o.passed,
                "result": o.detail,
            }
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
    if infill_records:
        lines = {t.task_id: t.line for t in tasks}
        infill_outcomes = outcomes[len(records) :]
        metrics["infill"] = {
            "tasks": len(infill_records),
            "pass@1": sum(o.passed for o in infill_outcomes) / len(infill_records),
            "exact_match": sum(r["completion"].strip() == lines[r["task_id"]].strip() for r in infill_records)
            / len(infill_records),
        }
    return metrics


def benchmark(params: BenchmarkParams, sandbox_params: SandboxParams | None = None) -> dict[str, Any]:
    """Run the stage; returns the metrics (also written to ``params.metrics`` unless generating only)."""
    problems = read_problems(params.problems)
    if params.limit:
        problems = problems[: params.limit]
    tasks: list[InfillTask] = []
    if params.infill:
        tasks = infill_tasks(problems)
        if not tasks:
            raise DataError(f"{params.problems} has no canonical_solution to build infilling tasks from")
        if params.infill_limit:
            tasks = tasks[: params.infill_limit]
    if not params.execute_only:
        _generate(params, problems, tasks)
    if params.generate_only:
        return {}
    metrics = _execute(params, problems, tasks, sandbox_params or SandboxParams())
    with atomic_open(params.metrics) as fh:
        json.dump(metrics, fh, indent=2)
        fh.write("\n")
    return metrics
