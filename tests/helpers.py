"""Builders shared by the tests: source trees, tiny tokenizers, MMIDIDX shards, tiny models, CLI runs.

Import them (``from tests.helpers import write_shard``; pyproject's pytest ``pythonpath`` puts the
repository root on ``sys.path``). The session fixtures built from them (``tiny_tokenizer``,
``lm_shards``, ...) are in ``tests/conftest.py``.

Why one module: each builder was copied into several test files and the copies drifted (other model
sizes, other ways to encode a file, other subprocess environments). Tests that need their own numbers
pass them as arguments, so what a test depends on is visible at its call.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "gitnetic" / "configs"  # the ready model configs shipped with the package
GPT2_TINY = CONFIGS / "gpt2-tiny.yaml"
VENV_BIN = Path(sys.executable).parent
TINY_VOCAB_SIZE = 512

# ---------------------------------------------------------------------------------------- source trees

# relative path -> exact bytes (CRLF and tabs are deliberate: the pipeline must keep them).
TINY_CORPUS_FILES: dict[str, bytes] = {
    "geometry/__init__.py": b'"""Small 2-D geometry helpers."""\n\nfrom .point import Point\n\n__all__ = ["Point"]\n',
    "geometry/point.py": '''"""Points in the plane; the angle is measured in radians (\u03c0 = half a turn)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    x: float
    y: float

    def __add__(self, other: Point) -> Point:
        return Point(self.x + other.x, self.y + other.y)

    def norm(self) -> float:
        return math.hypot(self.x, self.y)

    def angle(self) -> float:
        """Angle to the x axis, in (-\u03c0, \u03c0]."""
        return math.atan2(self.y, self.x)


def centroid(points: list[Point]) -> Point:
    if not points:
        raise ValueError("centroid of no points")
    n = len(points)
    return Point(sum(p.x for p in points) / n, sum(p.y for p in points) / n)
'''.encode(),
    "geometry/shapes.py": b"""# Tab-indented on purpose: the tokenizer must keep tabs.
import math

from .point import Point


class Circle:
\tdef __init__(self, center: Point, radius: float) -> None:
\t\tif radius < 0:
\t\t\traise ValueError(f"negative radius {radius}")
\t\tself.center = center
\t\tself.radius = radius

\tdef area(self) -> float:
\t\treturn math.pi * self.radius ** 2

\tdef contains(self, p: Point) -> bool:
\t\treturn (p.x - self.center.x) ** 2 + (p.y - self.center.y) ** 2 <= self.radius ** 2
""",
    "textutil/windows_lines.py": (
        b'"""Written on Windows: CRLF line endings."""\r\n\r\n'
        b"def normalize_newlines(text: str) -> str:\r\n"
        b'    return text.replace("\\r\\n", "\\n").replace("\\r", "\\n")\r\n\r\n\r\n'
        b"def count_lines(text: str) -> int:\r\n"
        b"    return len(normalize_newlines(text).splitlines())\r\n"
    ),
    "textutil/greetings.py": '''"""Greetings in several scripts: keep non-ASCII text byte for byte."""

GREETINGS = {
    "de": "Gr\u00fc\u00df Gott",
    "fr": "Bonjour, \u00e7a va\u00a0?",
    "ja": "\u3053\u3093\u306b\u3061\u306f",
    "ru": "\u041f\u0440\u0438\u0432\u0435\u0442",
    "emoji": "\U0001f44b\U0001f30d",
}


def greet(name: str, lang: str = "de") -> str:
    """Return a greeting such as 'Gr\u00fc\u00df Gott, Ada!'."""
    return f"{GREETINGS.get(lang, 'Hello')}, {name}!"
'''.encode(),
    "scripts/wordcount.py": b'''#!/usr/bin/env python3
"""Count words in files given on the command line."""

import argparse
import collections
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("files", nargs="+")
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    counts = collections.Counter()
    for name in args.files:
        with open(name, encoding="utf-8") as fh:
            for line in fh:
                counts.update(line.split())
    for word, n in counts.most_common(args.top):
        print(f"{n:6d} {word}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
''',
    "scripts/fib.py": b'''from functools import lru_cache


@lru_cache(maxsize=None)
def fib(n: int) -> int:
    """The n-th Fibonacci number (fib(0) == 0)."""
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def fib_iter(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
''',
    "tests/test_point.py": b"""import pytest

from geometry.point import Point, centroid


def test_add():
    assert Point(1, 2) + Point(3, 4) == Point(4, 6)


def test_centroid_of_nothing():
    with pytest.raises(ValueError):
        centroid([])
""",
    "README.md": b"# tiny corpus\n\nNot Python: the default include `**/*.py` leaves it out.\n",
}


def write_tree(root: Path, files: dict[str, str | bytes]) -> Path:
    """Write ``files`` (relative path -> bytes, or text saved as UTF-8) below ``root``; returns ``root``."""
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def stdlib_json_dir() -> Path:
    """The running Python's ``json`` package: real, small (~50 KB) and always present."""
    return Path(sysconfig.get_paths()["stdlib"]) / "json"


def stdlib_json_files() -> list[Path]:
    """The ``*.py`` files of :func:`stdlib_json_dir`, in name order."""
    return sorted(stdlib_json_dir().glob("*.py"))


def read_texts(paths: Iterable[Path]) -> list[str]:
    """Each file's text exactly (CRLF kept: no newline translation)."""
    return [p.read_bytes().decode("utf-8") for p in paths]


def git(
    repo: Path,
    *args: str,
    name: str = "Test",
    email: str = "test@example.com",
    date: str = "2020-01-01T00:00:00",
) -> str:
    """``git ARGS`` in ``repo`` as ``name <email>`` at ``date``, without the user's git config; stdout."""
    config = ["-c", f"user.name={name}", "-c", f"user.email={email}", "-c", "init.defaultBranch=main"]
    env = {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date, "PATH": "/usr/bin:/bin", "HOME": str(repo)}
    return subprocess.run(
        ["git", *config, "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env
    ).stdout


# ---------------------------------------------------------------------------------------- tokenizers


def train_tiny_tokenizer(out: Path, texts: Iterable[str], **params: Any) -> Path:
    """A real byte-level BPE (``TINY_VOCAB_SIZE`` unless ``vocab_size`` is given) saved to ``out`` by the
    tokenizer stage's own training code."""
    from gitnetic.data.tokenizer import TokenizerParams, train_tokenizer

    params.setdefault("vocab_size", TINY_VOCAB_SIZE)
    train_tokenizer(texts, out, TokenizerParams(**params))
    return out


# ---------------------------------------------------------------------------------------- shards


def write_shard(prefix: Path | str, docs: Iterable[Sequence[int]], dtype: Any = np.uint16) -> str:
    """One MMIDIDX shard ``PREFIX.{bin,idx}`` holding ``docs`` (token id sequences), in order."""
    from gitnetic.data.indexed import IndexedDatasetBuilder

    with IndexedDatasetBuilder(str(prefix), dtype) as builder:
        for doc in docs:
            builder.add_document(doc)
    return str(prefix)


def marked_docs(sizes: Sequence[int], seed: int = 0, mark: int = 10) -> list[np.ndarray]:
    """Random documents of ``sizes`` tokens whose first token is ``mark + i``: a batch row names its
    document. Ids are in [5, 500), clear of the special tokens."""
    rng = np.random.default_rng(seed)
    return [
        np.concatenate([[mark + i], rng.integers(5, 500, size=n - 1)]).astype(np.uint16)
        for i, n in enumerate(sizes)
    ]


def encode_files(tokenizer: Any, paths: Iterable[Path]) -> list[list[int]]:
    """Each file, one document, encoded by ``tokenizer`` (a transformers tokenizer)."""
    return [tokenizer(p.read_text(encoding="utf-8"))["input_ids"] for p in paths]


def preprocess_shards(tokenizer_dir: Path, corpus_dir: Path, out: Path, *flags: str) -> Path:
    """Shards of ``corpus_dir/{split}.jsonl`` written to ``out`` by the real preprocess stage."""
    from gitnetic.cli.preprocess import main as preprocess_main

    argv = ["--tokenizer_path", str(tokenizer_dir), "--input_dir", str(corpus_dir), "--output_dir", str(out)]
    assert preprocess_main([*argv, *flags]) == 0
    return out


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


# ---------------------------------------------------------------------------------------- tiny models

# A model-config YAML (as a dict) for pipeline runs in seconds: GPT-2, 1 layer x 32, 64 positions.
TINY_MODEL_CONFIG = {
    "model": {
        "name": "transformers.GPT2LMHeadModel",
        "config": "transformers.GPT2Config",
        "config_params": {"n_embd": 32, "n_layer": 1, "n_head": 2, "n_inner": 64, "n_positions": 64},
    }
}


def tiny_gpt2(vocab: int | Any, **overrides: Any) -> Any:
    """A randomly initialised GPT-2, 2 layers x 32 wide, 64 positions. ``vocab`` is a size, or a
    tokenizer whose size and bos/eos ids the config takes."""
    import transformers

    config: dict[str, Any] = {"n_embd": 32, "n_layer": 2, "n_head": 2, "n_positions": 64}
    if isinstance(vocab, int):
        config["vocab_size"] = vocab
    else:
        config.update(vocab_size=len(vocab), bos_token_id=vocab.bos_token_id, eos_token_id=vocab.eos_token_id)
    config.update(overrides)
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(**config))


def tiny_roberta(tokenizer: Any, **overrides: Any) -> Any:
    """A randomly initialised RoBERTa masked LM for ``tokenizer``, 2 layers x 32 wide, 64 positions."""
    import transformers

    config = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64 + 2,  # RoBERTa's positions start after the padding id
        "pad_token_id": tokenizer.pad_token_id,
        **overrides,
    }
    return transformers.RobertaForMaskedLM(transformers.RobertaConfig(**config))


def module_and_data(
    tokenizer: Any,
    model: Any,
    train: str,
    valid: str | None = None,
    *,
    module: dict | None = None,
    **data: Any,
) -> tuple[Any, Any]:
    """A ``TransformerModule`` training ``model`` (its params from ``module``) and a
    ``TransformerDataModule`` over the shard prefixes ``train``/``valid`` (its other params from ``data``).

    Build ``model`` after the ``TransformerTrainer``: the trainer seeds the RNGs that initialise it.
    """
    from gitnetic.modules.transformer_datamodule import TransformerDataModule
    from gitnetic.modules.transformer_module import TransformerModule

    module_params = TransformerModule.Params(**(module or {}))
    data_params = TransformerDataModule.Params(train_data_prefix=train, val_data_prefix=valid, **data)
    return (
        TransformerModule(model=model, tokenizer=tokenizer, params=module_params),
        TransformerDataModule(tokenizer=tokenizer, params=data_params),
    )


def checkpoint_weights(path: Path) -> dict[str, Any]:
    """The ``state_dict`` of a Lightning checkpoint file."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=False)["state_dict"]


def assert_same_weights(a: Path | dict, b: Path | dict) -> None:
    """Two checkpoints (paths) or state dicts hold bit-identical tensors under the same names."""
    import torch

    wa = a if isinstance(a, dict) else checkpoint_weights(a)
    wb = b if isinstance(b, dict) else checkpoint_weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.equal(wa[k], wb[k])]
    assert not different, f"weights differ: {different[:5]}"


# ---------------------------------------------------------------------------------------- the CLI


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
    import shutil

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


SEED_STEPS = 50


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


def train_seed_command(root: Path, config: Path, tokenizer: Path, shards: Path) -> dict:
    """Run the seed's example command in ``root``; returns the run (root, save_dir, process, steps)."""
    root.mkdir(parents=True, exist_ok=True)
    proc = run_gitnetic(*seed_command(config, tokenizer, shards, root / "checkpoints"), cwd=root)
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


# ---------------------------------------------------------------------------------------- DVC experiments


def exp_names(root: Path) -> set[str]:
    """Names of the DVC experiments committed in the repository ``root`` (all baselines)."""
    refs = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname)", "refs/exps"],
        cwd=root, capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return {ref.rsplit("/", 1)[-1] for ref in refs}


def queue_workers(root: Path) -> list[Any]:
    """The running ``dvc exp queue-worker`` processes of the repository ``root`` (psutil processes).

    With :func:`exp_names`, what waiting for queued experiments watches instead of `dvc queue status`:
    that command sends control messages through the queue's file broker, and a worker that reads one
    half written crashes."""
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        try:
            if "queue-worker" in (proc.info["cmdline"] or []) and proc.info["cwd"] == str(root):
                found.append(proc)
        except psutil.Error:
            continue
    return found
