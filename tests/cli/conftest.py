"""Fixtures for the train/evaluate/export CLI tests: real shards and the seed's example command.

Shards are built once per pytest worker from generated code plus the shared tiny corpus, with the
shared tiny tokenizer (``tests/conftest.py``), through the real preprocess stage. Helpers are handed
out as fixtures because test modules cannot import this conftest by name (tests/conftest.py would
shadow it).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "gitnetic" / "configs"
SEED_STEPS = 50


def cli_env() -> dict[str, str]:
    """Subprocess environment: one BLAS/OpenMP thread (parallel pytest workers on 2 cores otherwise
    oversubscribe the CPU by an order of magnitude) and W&B without network or files."""
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        TOKENIZERS_PARALLELISM="false",
        WANDB_MODE="disabled",
        WANDB_SILENT="true",
        PYTHONWARNINGS="ignore",
    )
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def gitnetic(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    """``python -m gitnetic ARGS`` as a real subprocess in ``cwd``."""
    return subprocess.run(
        [sys.executable, "-m", "gitnetic", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_gitnetic(*args: str, cwd: Path, **popen: object) -> subprocess.Popen[str]:
    """``python -m gitnetic ARGS`` started in ``cwd`` (stdout/stderr piped, text), for tests that signal it."""
    return subprocess.Popen(
        [sys.executable, "-m", "gitnetic", *map(str, args)],
        cwd=cwd,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )


def seed_command(
    config: Path, tokenizer: Path, shards: Path, save_dir: Path, steps: int = SEED_STEPS
) -> list[str]:
    """Exactly the flags of the seed's example command (docs: seed-train.rst), filled in for a CPU run."""
    return [
        "train",
        "--task", "transformer-task",
        "--config_path", str(config),
        "--tokenizer_path", str(tokenizer),
        "--warmup_steps", "5",
        "--learning_rate", "3e-3",
        "--power", "1.0",
        "--train_data_prefix", str(shards / "train"),
        "--val_data_prefix", str(shards / "valid"),
        "--max_tokens", "512",
        "--num_workers", "0",
        "--gpus", "0",
        "--max_steps", str(steps),
        "--val_check_interval", str(steps // 2),
        "--save_step_frequency", str(steps // 2),
        "--save_dir", str(save_dir),
        "--progress_bar_refresh_rate", "0",
        "--log_every_n_steps", "5",
        "--wandb_project", "gitnetic-tests",
        "--wandb_name", "seed-command",
    ]  # fmt: skip


_NAMES = ["count", "total", "value", "items", "result", "index", "name", "path", "size", "data"]
_OPS = ["+", "-", "*", "//", "%"]


def _function(rng: random.Random) -> str:
    a, b = rng.sample(_NAMES, 2)
    lines = [
        f"def {rng.choice(['get', 'make', 'load', 'scale', 'merge'])}_{a}({a}, {b}={rng.randint(2, 99)}):",
        f'    """Return {a} {rng.choice(_OPS)} {b}."""',
    ]
    for _ in range(rng.randint(1, 4)):
        c = rng.choice(_NAMES)
        lines += [
            f"    {c} = {a} {rng.choice(_OPS)} {b}",
            f"    if {c} > {rng.randint(0, 9)}:",
            f"        {a} = {c}",
        ]
    return "\n".join([*lines, f"    return {a}"]) + "\n"


def generated_modules(seed: int, count: int) -> list[str]:
    """Small Python modules from a few templates with random names and numbers.

    Why generated code: 50 steps of a tiny model on a few real files only reach unigram quality, so a
    held-out "the model learned something" check needs data with structure it can pick up that fast.
    Held-out splits use other seeds, so no document is shared between train and valid/test.
    """
    rng = random.Random(seed)
    return ["\n\n".join(_function(rng) for _ in range(rng.randint(2, 4))) for _ in range(count)]


@pytest.fixture(scope="session")
def lm_shards(
    tmp_path_factory: pytest.TempPathFactory, tiny_corpus_jsonl: Path, tiny_tokenizer: Path
) -> Path:
    """``train``/``valid``/``test`` MMIDIDX shards written by the real preprocess stage.

    train: the shared tiny corpus' train split plus 240 generated modules; valid/test: 20 generated
    modules each (other seeds).
    """
    from gitnetic.cli.preprocess import main as preprocess_main

    corpus = tmp_path_factory.mktemp("lm_corpus")
    real_train = (tiny_corpus_jsonl / "train.jsonl").read_text(encoding="utf-8")
    splits = {
        "train": generated_modules(0, 240),
        "valid": generated_modules(1, 20),
        "test": generated_modules(2, 20),
    }
    for split, docs in splits.items():
        lines = "".join(json.dumps({"text": doc}) + "\n" for doc in docs)
        (corpus / f"{split}.jsonl").write_text(
            (real_train if split == "train" else "") + lines, encoding="utf-8"
        )
    out = tmp_path_factory.mktemp("bin")
    argv = ["--tokenizer_path", str(tiny_tokenizer), "--input_dir", str(corpus), "--output_dir", str(out)]
    assert preprocess_main([*argv, "--workers", "1"]) == 0
    return out


def train_seed_command(root: Path, config: Path, tokenizer: Path, shards: Path) -> dict:
    root.mkdir(parents=True, exist_ok=True)
    proc = gitnetic(*seed_command(config, tokenizer, shards, root / "checkpoints"), cwd=root)
    assert proc.returncode == 0, f"seed command failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
    return {
        "root": root,
        "save_dir": root / "checkpoints",
        "proc": proc,
        "config": config,
        "steps": SEED_STEPS,
    }


def assert_trained(run: dict) -> list[float]:
    """Checkpoints at half and full steps, a falling DVCLive train-loss curve, a sane val loss."""
    save_dir, steps = run["save_dir"], run["steps"]
    for name in (f"checkpoint_step{steps // 2}.ckpt", f"checkpoint_step{steps}.ckpt", "checkpoint_last.ckpt"):
        assert (save_dir / name).is_file(), f"{name} missing in {sorted(p.name for p in save_dir.iterdir())}"
    lines = (run["root"] / "dvclive" / "plots" / "metrics" / "train" / "loss.tsv").read_text().splitlines()
    column = lines[0].split("\t").index("loss")
    losses = [float(line.split("\t")[column]) for line in lines[1:] if line.strip()]
    assert len(losses) >= 8
    first, last = sum(losses[:2]) / 2, sum(losses[-2:]) / 2
    assert last < first - 0.5, f"training loss did not decrease: {losses}"
    metrics = json.loads((run["root"] / "dvclive" / "metrics.json").read_text())
    assert metrics["step"] in (steps - 1, steps)
    assert 0 < metrics["val"]["loss"] < losses[0]
    assert "Traceback" not in run["proc"].stderr
    return losses


@pytest.fixture(scope="session")
def check_trained():
    """``check_trained(run)``: :func:`assert_trained` as a fixture (conftest is not importable by name)."""
    return assert_trained


@pytest.fixture(scope="session")
def run_gitnetic():
    """``run_gitnetic(*args, cwd=...)``: the CLI as a subprocess (a fixture: test modules cannot import
    this conftest by name without clashing with tests/conftest.py)."""
    return gitnetic


@pytest.fixture(scope="session")
def start_gitnetic_process():
    """``start_gitnetic_process(*args, cwd=...)``: the CLI as a running ``Popen`` (see :func:`start_gitnetic`)."""
    return start_gitnetic


@pytest.fixture(scope="session")
def train_seed():
    """``train_seed(root, config, tokenizer, shards)``: run the seed command, return its run dict."""
    return train_seed_command
