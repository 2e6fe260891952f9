"""End-to-end runs of the real pipeline with DVC and Snakemake on a tiny configuration.

Why one module-scoped DVC repository: every stage is a real subprocess (corpus, tokenizer, preprocess,
Lightning training, evaluation, export), so the repo is reproduced once and the tests then ask
questions of it in order (no-op repro, killed train stage, remote round trip; `dvc exp run` is
asked in test_experiments.py, of its own copy of this reproduced repository: the repro runs once per
session, see :func:`reproduced_repo`). A second, independent repo run
by Snakemake checks that both engines build identical artifacts and that a re-run with the same seed
and corpus reproduces shards and metrics exactly.

The tests belong on one xdist worker (``xdist_group``; ``--dist loadscope`` keeps a module together
too). Each test only reads what the fixture recorded, so on separate workers they still pass, each
worker with its own copy of the session's one reproduction.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import (
    REPO,
    TINY_MODEL_CONFIG,
    assert_same_weights,
    built_once,
    checkpoint_weights,
    copy_pipeline,
    pipeline_env,
    run_ok,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e")]

STAGES = ("corpus", "tokenizer", "preprocess", "train", "evaluate", "benchmark", "export")
TIMEOUT_S = 300


def tiny_params() -> dict:
    """The repository's params.yaml shrunk to seconds: a few stdlib files, vocab 400, 8 steps."""
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["corpus"].update(
        include=["email/**/*.py", "json/**/*.py"],
        max_bytes=300_000,
        splits={
            "valid_ratio": 0.15,
            "test_ratio": 0.15,
            "seed": 2,
        },  # with these files: 10 train, 2 valid, 3 test
    )
    params["tokenizer"].update(vocab_size=400)
    params["train"].update(
        batch_size=4,
        max_length=64,
        max_steps=40,  # long enough to kill -9 the train stage between two checkpoints
        warmup_steps=2,
        val_check_interval=20,
        limit_val_batches=2,
        save_step_frequency=4,
        log_every_n_steps=1,
        # Fixed in params, so DVC (caller's OMP_NUM_THREADS) and Snakemake (OMP_NUM_THREADS = the rule's
        # threads) compute the same floats; 1 because the test workers share 2 cores.
        num_threads=1,
    )
    params["evaluate"].update(max_length=64, num_threads=1)
    params["benchmark"].update(limit=3, max_new_tokens=16, workers=1)
    return params


def run(*cmd: str, cwd: Path) -> str:
    """Run a command to completion; fail the test with its output if it fails. Returns stdout+stderr."""
    return run_ok(*cmd, cwd=cwd, timeout=TIMEOUT_S)


def make_repo(root: Path) -> Path:
    """A fresh git+DVC repository holding the pipeline files and a tiny params.yaml."""
    copy_pipeline(root)
    params = tiny_params()
    (root / params["train"]["config_path"]).write_text(yaml.safe_dump(TINY_MODEL_CONFIG), encoding="utf-8")
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    run("git", "init", "-q", cwd=root)
    run("dvc", "init", "-q", cwd=root)
    run("dvc", "config", "core.autostage", "false", cwd=root)
    run("dvc", "config", "core.analytics", "false", cwd=root)
    commit(root, "pipeline")
    return root


def commit(root: Path, message: str) -> None:
    run("git", "add", "-A", cwd=root)
    run("git", "commit", "-q", "--allow-empty", "-m", message, cwd=root)


def ran_stages(output: str) -> set[str]:
    return set(re.findall(r"Running stage '([\w-]+)'", output))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shard_digests(root: Path) -> dict[str, str]:
    return {
        p.name: digest(p) for p in sorted((root / "data" / "bin").glob("*.*")) if p.suffix in (".bin", ".idx")
    }


def read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


def weights(root: Path) -> dict:
    return checkpoint_weights(root / "models" / "checkpoints" / "checkpoint_last.ckpt")


def run_and_kill_train(
    cmd: list[str], root: Path, after: str = "checkpoint_step4.ckpt", signum: int = signal.SIGKILL
) -> str:
    """Run ``cmd`` (dvc/snakemake); send ``signum`` to its train process once ``after`` (a checkpoint
    file) exists; return the engine's output. SIGKILL: no handler runs, like a node failure."""
    import psutil

    ckpts = root / "models" / "checkpoints"
    proc = subprocess.Popen(
        cmd, cwd=root, env=pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_until(ckpts / after, proc, "step checkpoint", timeout=TIMEOUT_S, poll=0.01)
    for child in psutil.Process(proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "gitnetic" in child.cmdline() and "train" in child.cmdline():
                child.send_signal(signum)
    output = proc.communicate(timeout=TIMEOUT_S)[0]
    assert proc.returncode != 0, output[-4000:]
    assert not (ckpts / "checkpoint_step40.ckpt").exists(), "killed too late: training had finished"
    return output


def checkpoint_folders(root: Path) -> str:
    """The checkpoint folder and the resume store, one line a file: name, inode, size, whether it is a
    whole checkpoint (what a failed resume assertion needs to say which file was missing or damaged)."""
    from gitnetic.models.checkpoint import is_valid_checkpoint
    from gitnetic.training.resume import STORE_DIR

    lines = []
    for folder, pattern in ((root / "models" / "checkpoints", "*"), (root / STORE_DIR, "*.ckpt")):
        for path in sorted(folder.rglob(pattern)) if folder.is_dir() else ():
            if path.is_file():
                st = path.stat()
                whole = "whole" if path.suffix != ".ckpt" or is_valid_checkpoint(path) else "NOT WHOLE"
                lines.append(f"{path.relative_to(root)} inode {st.st_ino} {st.st_size} B {whole}")
    return "\n".join(lines) or "(nothing)"


def _build_reproduced_repo(folder: Path) -> None:
    root = make_repo(folder / "repo")
    output = run("dvc", "repro", cwd=root)
    commit(root, "first run")
    (folder / "repro.log").write_text(output, encoding="utf-8")


def reproduced_repo(tmp_path_factory: pytest.TempPathFactory, dest: Path) -> str:
    """Copy to ``dest`` a repository (:func:`make_repo`) after one full `dvc repro`, committed; return
    that repro's console output.

    The repro runs once per test session (:func:`built_once`): this module and test_experiments.py
    each start from it, on different xdist workers, and each gets its own copy to change. A copy is
    a whole repository: git, DVC's cache and outputs, nothing that names the folder it was built in."""
    built = built_once(tmp_path_factory, "reproduced-repo", _build_reproduced_repo)
    shutil.copytree(built / "repo", dest, symlinks=True)
    return (built / "repro.log").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def dvc_repo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A repo after one full `dvc repro`, with what the later tests compare against."""
    root = tmp_path_factory.mktemp("e2e") / "dvc"
    output = reproduced_repo(tmp_path_factory, root)
    return {
        "root": root,
        "output": output,
        "eval": read_json(root / "metrics" / "eval.json"),
        "shards": shard_digests(root),
        "weights": weights(root),
    }


def test_dvc_repro_runs_every_stage_and_writes_outputs(dvc_repo: dict) -> None:
    root = dvc_repo["root"]
    assert ran_stages(dvc_repo["output"]) == set(STAGES)
    for split in ("train", "valid", "test"):
        assert (root / "data" / "corpus" / f"{split}.jsonl").stat().st_size > 0
    assert (root / "data" / "tokenizer" / "tokenizer.json").is_file()
    num_shards = yaml.safe_load((root / "params.yaml").read_text())["preprocess"]["num_shards"]
    assert len(dvc_repo["shards"]) == 3 * 2 * num_shards  # 3 splits x {.bin, .idx} x shards
    assert (root / "models" / "checkpoints" / "checkpoint_last.ckpt").is_file()
    assert (root / "models" / "hf" / "config.json").is_file()
    metrics = dvc_repo["eval"]
    assert {"loss", "perplexity", "tokens", "unigram_perplexity"} <= set(metrics)
    assert metrics["tokens"] > 0
    assert metrics["perplexity"] == pytest.approx(2.718281828 ** metrics["loss"], rel=1e-3)
    # code-completion metrics (params.yaml evaluate.completion_samples); no FIM tokens, so no infilling
    assert metrics["next_line_samples"] > 0 and 0 <= metrics["next_line_exact_match"] <= 1
    assert "infill_exact_match" not in metrics
    # run outputs are DVC-tracked and git-ignored, never committed
    ignored = run("git", "check-ignore", "data/bin", "models/checkpoints", "models/hf", cwd=root)
    assert "data/bin" in ignored and "models/hf" in ignored


# Lines DVC itself prints once per stage, and tqdm progress-bar redraws: legitimately repeated.
_REPEATABLE = re.compile(r"^(Updating lock file|Running stage|> |To track the changes|\s*$)|it/s|%\|")


def test_pipeline_console_is_clean_and_ends_with_a_summary(dvc_repo: dict) -> None:
    """Each message once; no tracebacks, deprecation noise, advertisements or Lightning's FLOPs table."""
    output = dvc_repo["output"]
    lines = [line.strip() for line in output.replace("\r", "\n").splitlines()]
    seen: dict[str, int] = {}
    for line in lines:
        if not _REPEATABLE.search(line):
            seen[line] = seen.get(line, 0) + 1
    assert [line for line, n in seen.items() if n > 1] == []
    for noise in ("Traceback", "DeprecationWarning", "FutureWarning", "is deprecated", "Tip:", "FLOPs"):
        assert noise not in output, f"{noise!r} in the pipeline console:\n{output[-4000:]}"
    assert not [line for line in lines if line.startswith("INFO: ")]
    # what each stage says it did is still there
    assert "train: GPT2LMHeadModel" in output and re.search(r"train: 40 steps, [\d,]+ tokens in", output)
    summary = run(sys.executable, "-m", "gitnetic", "summary", cwd=dvc_repo["root"])
    assert "held-out perplexity" in summary and "unigram baseline" in summary
    assert "next-line exact match" in summary
    assert "models/checkpoints/checkpoint_last.ckpt" in summary and "models/hf" in summary
    assert "dvc exp show" in summary and "dvc plots show" in summary
    assert "humaneval (code run)" in summary and "pass@1" in summary
    assert max(len(line) for line in summary.splitlines()) < 200


def test_dvc_metrics_and_plots_show(dvc_repo: dict) -> None:
    root = dvc_repo["root"]
    metrics = json.loads(run("dvc", "metrics", "show", "--json", cwd=root))
    files = next(iter(metrics.values()))["data"]
    assert files["metrics/eval.json"]["data"]["perplexity"] == pytest.approx(dvc_repo["eval"]["perplexity"])
    assert "dvclive/metrics.json" in files and "data/corpus/stats.json" in files
    bench = files["metrics/benchmark.json"]["data"]
    assert bench["scored_problems"] == 3 and bench["samples"] == 3 and bench["pass@1"] == 0.0
    if os.geteuid() == 0:
        assert bench["sandbox"] == "root"  # full isolation (docs/benchmark.md)
    shown = run("dvc", "exp", "show", "--json", cwd=root)  # the table lists the benchmark's metrics
    assert "pass@1" in shown and "perplexity" in shown
    plots = json.loads(run("dvc", "plots", "show", "--json", cwd=root))
    rows = plots["data"]["loss"][0]["content"]["data"]["values"]
    curves = {row["filename"] for row in rows}
    assert curves == {"train/loss.tsv", "val/loss.tsv"}
    speed = plots["data"]["throughput"][0]["content"]["data"]["values"]
    assert speed and all(float(row["tokens_per_sec"]) > 0 for row in speed)
    train_steps = {int(row["step"]) for row in rows if row["filename"] == "train/loss.tsv"}
    assert len(train_steps) >= 2, "the loss plot should hold a curve over several training steps"


def test_second_dvc_repro_does_nothing(dvc_repo: dict) -> None:
    output = run("dvc", "repro", cwd=dvc_repo["root"])
    assert ran_stages(output) == set()
    assert "Data and pipelines are up to date." in output


def test_dvc_repro_after_a_killed_train_stage_resumes_exactly(dvc_repo: dict) -> None:
    """SIGTERM to the train stage after a step checkpoint: it saves the step reached, fails, and DVC does
    not record it as done; the rerun resumes from that step and is kill -9'd after its next step
    checkpoint; `dvc repro` continues it to the same model as the uninterrupted run."""
    root = dvc_repo["root"]
    lock = (root / "dvc.lock").read_bytes()
    shutil.rmtree(root / "models" / "checkpoints")  # train again from step 0 ...
    output = run_and_kill_train(["dvc", "repro", "train"], root, signum=signal.SIGTERM)  # ... and stop
    stopped = re.search(r"interrupted by SIGTERM at step (\d+); checkpoint saved to \S+", output)
    assert stopped, output[-4000:]
    step = int(stopped.group(1))
    assert step > 4  # later than the periodic checkpoint that existed when the signal came
    assert (root / "dvc.lock").read_bytes() == lock  # the half-trained model is not recorded as done
    status = run("dvc", "status", "train", cwd=root)
    assert "changed outs" in status and "models/checkpoints" in status, status

    after = f"checkpoint_step{(step // 4 + 1) * 4}.ckpt"  # the rerun's next periodic checkpoint
    output = run_and_kill_train(["dvc", "repro", "train"], root, after=after)  # resumes, then dies
    assert f"(step {step})" in output and "resuming this run from" in output, output[-4000:]
    left = checkpoint_folders(root)  # what the kill left, to say in a failure
    output = run("dvc", "repro", cwd=root)
    resumed = re.search(r"resuming this run from \S+ \(step (8|12|16|20|24|28|32|36)\)", output)
    assert resumed, f"{output[-4000:]}\nleft by the kill:\n{left}"
    assert ran_stages(output) == {"train", "evaluate", "benchmark", "export"}
    assert_same_weights(weights(root), dvc_repo["weights"])
    assert read_json(root / "metrics" / "eval.json") == dvc_repo["eval"]
    assert ran_stages(run("dvc", "repro", cwd=root)) == set()
    assert "up to date" in run("dvc", "status", cwd=root).lower()


def test_snakemake_builds_the_same_artifacts_reproducibly(dvc_repo: dict, tmp_path: Path) -> None:
    """An independent run (Snakemake, sharded jobs, same seed and corpus) matches DVC's byte for byte,
    after its train job was kill -9'd midway and the rerun resumed it."""
    root = make_repo(tmp_path / "smk")
    run_and_kill_train(["snakemake", "--cores", "2"], root)
    assert not (root / "models" / "checkpoints" / "checkpoint_last.ckpt").exists()  # not recorded as done
    run("snakemake", "--cores", "2", cwd=root)
    assert "resuming this run from" in (root / "logs" / "train.log").read_text(encoding="utf-8")
    assert_same_weights(weights(root), dvc_repo["weights"])
    assert shard_digests(root) == dvc_repo["shards"]
    assert digest(root / "data" / "corpus" / "train.jsonl") == digest(
        dvc_repo["root"] / "data" / "corpus" / "train.jsonl"
    )
    assert read_json(root / "metrics" / "eval.json") == dvc_repo["eval"]
    assert (root / "models" / "hf" / "config.json").is_file()


def test_dvc_push_pull_round_trip_with_local_remote(dvc_repo: dict, tmp_path: Path) -> None:
    root = dvc_repo["root"]
    remote = tmp_path / "remote"
    run("dvc", "remote", "add", "-d", "storage", str(remote), cwd=root)
    run("dvc", "push", cwd=root)
    before = {
        "shards": shard_digests(root),
        "ckpt": digest(root / "models" / "checkpoints" / "checkpoint_last.ckpt"),
    }
    for out in ("data/bin", "models/checkpoints", "models/hf", ".dvc/cache"):
        shutil.rmtree(root / out)
    run("dvc", "pull", cwd=root)
    assert shard_digests(root) == before["shards"]
    assert digest(root / "models" / "checkpoints" / "checkpoint_last.ckpt") == before["ckpt"]
    assert (root / "models" / "hf" / "config.json").is_file()
    assert "up to date" in run("dvc", "status", cwd=root).lower()
