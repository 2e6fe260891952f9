"""The pipeline, multi-process training and time-limited training on a real one-node SLURM cluster.

Why real: the SLURM profile, the executor plugin, ``srun`` and SLURM's signals only meet on a cluster;
``scripts/slurm-local.sh`` starts one on this machine (``scripts/test-slurm.sh`` runs these tests).
Every SLURM run is checked against the same work done without SLURM: shards, metrics and weights
must be identical, not merely present.

One module-scoped pipeline run under SLURM (tiny params, as in tests/e2e) feeds the later tests,
which copy its repository and re-run only the training in the copy.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from pathlib import Path
from types import ModuleType

import pytest
import torch
import yaml

from tests.helpers import assert_same_weights

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

PROFILE = "workflow/profiles/slurm-local"
CKPT = "models/checkpoints/checkpoint_last.ckpt"
CORPUS_PARTS = 2


def slurm_job_ids(output: str) -> list[str]:
    return re.findall(r"submitted with SLURM jobid (\d+)", output)


def job_states(job_ids: list[str]) -> dict[str, str]:
    """SLURM's state of each job (finished jobs stay in squeue for MinJobAge, see slurm-local.sh)."""
    out = subprocess.run(
        ["squeue", "-h", "--states=all", "-j", ",".join(job_ids), "-o", "%i %T"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split() for line in out.splitlines())


def set_params(root: Path, section: str, **values) -> None:
    params_file = root / "params.yaml"
    params = yaml.safe_load(params_file.read_text(encoding="utf-8"))
    params[section].update(values)
    params_file.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")


def set_train_params(root: Path, **values) -> None:
    set_params(root, "train", **values)


def copy_repo(src: Path, dst: Path) -> Path:
    """The pipeline repo with its data stages done, without training outputs (a training starts fresh)."""
    shutil.copytree(src, dst, symlinks=True, ignore=shutil.ignore_patterns("slurm_logs"))
    for name in ("models", "dvclive", "metrics", "logs"):
        shutil.rmtree(dst / name, ignore_errors=True)
    return dst


@pytest.fixture(scope="module")
def slurm_pipeline(tmp_path_factory, pipeline: ModuleType, run_cmd) -> dict:
    root = pipeline.make_repo(tmp_path_factory.mktemp("slurm") / "repo")
    # the corpus stage fanned out over the cluster (2 sign jobs, 1 decide job, 1 write job per split);
    # the local run below builds it in one job, and every shard must still be the same
    set_params(root, "corpus", parts={"count": CORPUS_PARTS})
    output = run_cmd("snakemake", "--workflow-profile", PROFILE, cwd=root)
    return {"root": root, "output": output}


@pytest.fixture(scope="module")
def local_pipeline(tmp_path_factory, pipeline: ModuleType, run_cmd) -> Path:
    root = pipeline.make_repo(tmp_path_factory.mktemp("local") / "repo")
    run_cmd("snakemake", "--cores", "2", cwd=root)
    return root


def test_pipeline_under_slurm_profile_equals_local_run(
    slurm_pipeline: dict, local_pipeline: Path, pipeline: ModuleType
) -> None:
    root, output = slurm_pipeline["root"], slurm_pipeline["output"]
    num_shards = yaml.safe_load((root / "params.yaml").read_text())["preprocess"]["num_shards"]
    # corpus (sign parts, decide, write 3 splits), tokenizer, 3 splits x shards, train, evaluate,
    # benchmark, export: each one sbatch job
    job_ids = slurm_job_ids(output)
    assert len(job_ids) == (CORPUS_PARTS + 1 + 3) + 5 + 3 * num_shards, output[-4000:]
    assert set(job_states(job_ids).values()) == {"COMPLETED"}
    assert pipeline.shard_digests(root) == pipeline.shard_digests(local_pipeline)
    assert len(pipeline.shard_digests(root)) == 3 * 2 * num_shards
    assert pipeline.read_json(root / "metrics/eval.json") == pipeline.read_json(
        local_pipeline / "metrics/eval.json"
    )
    assert (root / "models/hf/config.json").is_file()


def test_two_task_srun_ddp_training_through_the_profile_equals_ddp_without_slurm(
    slurm_pipeline: dict, tmp_path: Path, run_cmd
) -> None:
    """`srun` starts 2 tasks; Lightning's SLURM environment makes them ranks 0 and 1 (gloo on CPU)."""
    root = copy_repo(slurm_pipeline["root"], tmp_path / "ddp")
    set_train_params(
        root,
        accelerator="cpu",
        devices="2",
        strategy="ddp",
        max_steps=8,
        save_step_frequency=4,
        val_check_interval=4,
    )
    output = run_cmd(
        "snakemake", "--workflow-profile", PROFILE, CKPT,
        "--set-threads", "train=1",  # 2 tasks x 1 CPU: the node's 2 CPUs
        "--set-resources", "train:mpi='srun --ntasks-per-node=2'", "train:tasks_per_node=2",
        "train:runtime=20", "train:mem_mb=4000",
        cwd=root,
    )  # fmt: skip
    job_ids = slurm_job_ids(output)
    assert len(job_ids) == 1 and set(job_states(job_ids).values()) == {"COMPLETED"}
    log = (root / "logs/train.log").read_text()
    assert "GLOBAL_RANK: 0, MEMBER: 1/2" in log and "GLOBAL_RANK: 1, MEMBER: 2/2" in log, log[-3000:]
    ckpt = torch.load(root / CKPT, map_location="cpu", weights_only=False)
    loader_state = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"][0]
    assert loader_state["num_replicas"] == 2  # the batch sampler split batches over 2 ranks
    # rank 0 alone wrote checkpoints and metrics: one set, at the configured steps
    assert sorted(p.name for p in (root / "models/checkpoints").iterdir()) == [
        "checkpoint_last.ckpt", "checkpoint_step4.ckpt", "checkpoint_step8.ckpt",
    ]  # fmt: skip
    assert (root / "dvclive/metrics.json").is_file()

    # The same 2-process DDP run without SLURM: Lightning starts the second process itself.
    run_cmd(
        "python", "-m", "gitnetic", "train", "--config", "params.yaml:train",
        "--save_dir", "ref/checkpoints", "--dvclive_dir", "ref/dvclive",
        cwd=root, env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
    )  # fmt: skip
    assert ckpt["global_step"] == 8
    assert_same_weights(root / CKPT, root / "ref/checkpoints/checkpoint_last.ckpt")


def seconds_per_step(root: Path, run_cmd) -> float:
    """This machine's time for one optimizer step of the test's training (without start-up)."""
    run_cmd(
        "python", "-m", "gitnetic", "train", "--config", "params.yaml:train", "--max_steps", "60",
        "--save_step_frequency", "20", "--num_last_checkpoints", "-1", "--save_dir", "calibrate/checkpoints", "--dvclive_dir", "calibrate/dvclive",
        cwd=root,
    )  # fmt: skip
    ckpts = root / "calibrate/checkpoints"
    seconds = (ckpts / "checkpoint_step60.ckpt").stat().st_mtime - (
        ckpts / "checkpoint_step20.ckpt"
    ).stat().st_mtime
    shutil.rmtree(root / "calibrate")
    return max(seconds / 40, 1e-3)


def test_time_limited_train_job_is_signalled_checkpointed_and_resubmitted_until_done(
    slurm_pipeline: dict, tmp_path: Path, run_cmd
) -> None:
    """A 1-minute SLURM time limit (SLURM's minimum) and a longer training: SIGUSR1 before the limit ->
    checkpoint at the step reached, exit 75 -> Snakemake resubmits -> the training resumes; the final
    weights equal an uninterrupted run's."""
    root = copy_repo(slurm_pipeline["root"], tmp_path / "timelimit")
    set_train_params(
        root,
        val_check_interval=1_000_000,
        save_step_frequency=1_000_000,
        log_every_n_steps=10,
        progress_bar_refresh_rate=0,  # the failed attempts' logs are printed whole (show-failed-logs)
    )
    # About 70 s of optimizer steps on this machine, plus start-up: longer than the 1-minute limit.
    steps = max(60, round(70 / seconds_per_step(root, run_cmd)))
    set_train_params(root, max_steps=steps, val_check_interval=steps // 2, save_step_frequency=steps // 2)

    started = time.monotonic()
    output = run_cmd(
        "snakemake", "--workflow-profile", PROFILE, CKPT,
        "--set-resources", "train:runtime=1", "train:slurm_extra='--signal=USR1@10'",
        cwd=root,
    )  # fmt: skip
    slurm_seconds = time.monotonic() - started
    job_ids = slurm_job_ids(output)
    states = job_states(job_ids)
    assert len(job_ids) >= 2, output[-4000:]  # resubmitted at least once
    assert states[job_ids[-1]] == "COMPLETED"
    assert all(states[j] in ("FAILED", "TIMEOUT") for j in job_ids[:-1]), states
    # show-failed-logs prints each stopped attempt's train log: signal -> checkpoint at the step reached
    stops = re.findall(r"interrupted by (SIGUSR1|SIGTERM) at step (\d+); checkpoint saved to (\S+);", output)
    assert stops, output[-6000:]
    assert all(0 < int(step) < steps for _, step, _ in stops)
    assert "SIGUSR1" in {name for name, _, _ in stops}  # the warning signal reached the training
    ckpt = torch.load(root / CKPT, map_location="cpu", weights_only=False)
    assert ckpt["global_step"] == steps

    started = time.monotonic()
    run_cmd(
        "python", "-m", "gitnetic", "train", "--config", "params.yaml:train",
        "--save_dir", "ref/checkpoints", "--dvclive_dir", "ref/dvclive",
        cwd=root,
    )  # fmt: skip
    uninterrupted_seconds = time.monotonic() - started
    # No bound on uninterrupted_seconds: the SLURM job's TIMEOUT/FAILED attempts above already prove the
    # training outlasted the limit, and a wall-clock bound here failed CI on a faster machine (57 s).
    assert_same_weights(root / CKPT, root / "ref/checkpoints/checkpoint_last.ckpt")
    print(
        f"{len(job_ids)} train jobs, {slurm_seconds:.0f} s under SLURM; uninterrupted {uninterrupted_seconds:.0f} s"
    )
