"""Running gitnetic, DVC and Snakemake as real subprocesses: environments, runners, pipeline checkouts."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tests.helpers.paths import GPT2_TINY, REPO, VENV_BIN


def child_env(**values: str) -> dict[str, str]:
    """This process's environment for a child process: without pytest-xdist's worker id (Lightning
    and the CLI would take it for a distributed launch), tokenizers without their own thread pool,
    plus ``values``."""
    env = dict(os.environ)
    env.pop("PYTEST_XDIST_WORKER", None)
    env.update({"TOKENIZERS_PARALLELISM": "false", **values})
    return env


def cli_env() -> dict[str, str]:
    """Subprocess environment: one BLAS/OpenMP thread (parallel pytest workers on 2 cores otherwise
    oversubscribe the CPU by an order of magnitude) and W&B without network or files."""
    return child_env(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        WANDB_MODE="disabled",
        WANDB_SILENT="true",
        PYTHONWARNINGS="ignore",
    )


def pipeline_env(**values: str) -> dict[str, str]:
    """Environment of the DVC/Snakemake runs: the venv's tools first on PATH, this checkout's gitnetic,
    W&B offline, no DVC analytics, a fixed git identity; ``values`` override."""
    defaults = {
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "gitnetic-e2e",
        "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
        "GIT_COMMITTER_NAME": "gitnetic-e2e",
        "GIT_COMMITTER_EMAIL": "e2e@example.invalid",
    }
    return child_env(**{**defaults, **values})


def run_ok(*cmd: str, cwd: Path, env: dict[str, str] | None = None, timeout: int = 300) -> str:
    """Run a command to completion (environment: :func:`pipeline_env`); fail the test with the tail of its
    output if it fails. Returns stdout+stderr."""
    proc = subprocess.run(
        list(cmd),
        cwd=cwd,
        env=env or pipeline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-8000:]}"
    return output


def copy_pipeline(root: Path, files: Sequence[str] = ("dvc.yaml", ".dvcignore")) -> Path:
    """A pipeline checkout at ``root`` (created): ``files`` of the repository, and the code and configs
    the stages run (gitnetic/, configs/, workflow/, without caches). Stages started there import this
    gitnetic, and DVC finds every code dependency of dvc.yaml."""
    root.mkdir(parents=True)
    for name in files:
        shutil.copy2(REPO / name, root / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".snakemake")
    for name in ("gitnetic", "configs", "workflow"):
        shutil.copytree(REPO / name, root / name, ignore=ignore)
    return root


def run_gitnetic(
    *args: Any, cwd: Path, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m gitnetic ARGS`` as a real subprocess in ``cwd`` (environment: :func:`cli_env`)."""
    return subprocess.run(
        [sys.executable, "-m", "gitnetic", *map(str, args)],
        cwd=cwd,
        env=cli_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_gitnetic(*args: Any, cwd: Path, **popen: Any) -> subprocess.Popen[str]:
    """``python -m gitnetic ARGS`` started in ``cwd`` (stdout/stderr piped, text; ``popen`` overrides), for
    tests that signal it."""
    options: dict[str, Any] = {"env": cli_env(), "stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
    return subprocess.Popen(
        [sys.executable, "-m", "gitnetic", *map(str, args)], cwd=cwd, text=True, **{**options, **popen}
    )


def wait_until(
    ready: Path | Callable[[], bool],
    proc: subprocess.Popen,
    what: str,
    timeout: float = 240,
    poll: float = 0.02,
) -> None:
    """Poll until ``ready`` (a path that exists, or a predicate) while ``proc`` runs; fail the test with the
    tail of its output if it ends first, or if ``what`` does not happen within ``timeout`` seconds."""
    check = ready.exists if isinstance(ready, Path) else ready
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, (
            f"ended before {what}:\n{''.join(o for o in proc.communicate() if o)[-4000:]}"
        )
        assert time.monotonic() < deadline, f"no {what} in time"
        time.sleep(poll)


def tiny_train_args(
    tokenizer: Path, shards: Path, save_dir: Path, *extra: str, steps: int, config: Path | str = GPT2_TINY
) -> list[str]:
    """``train`` flags of a tiny CPU run of ``transformer-task`` on ``shards/{train,valid}``: 64-token
    windows, 512-token batches, no progress bar; ``extra`` flags are appended."""
    return [
        "train",
        "--task", "transformer-task",
        "--config_path", str(config),
        "--tokenizer_path", str(tokenizer),
        "--train_data_prefix", str(shards / "train"),
        "--val_data_prefix", str(shards / "valid"),
        "--max_tokens", "512",
        "--max_length", "64",
        "--warmup_steps", "2",
        "--max_steps", str(steps),
        "--save_dir", str(save_dir),
        "--progress_bar_refresh_rate", "0",
        *extra,
    ]  # fmt: skip
