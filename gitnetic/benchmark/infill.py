"""Execution-checked infilling on OpenAI's HumanEval infilling task sets, exactly as published.

The sets (Bavarian et al. 2022; vendored byte for byte with their MIT license in
``human_eval_infilling/``, whose README says where they come from) are the ones the published FIM
results use: ``single-line`` (1,033 tasks: each non-blank line of each canonical HumanEval solution
masked in turn), ``multi-line`` (5,815: every run of lines from one such line to another),
``random-span`` (1,640: ten random character spans per problem) and ``random-span-light`` (164: one per
problem). Each task is used as it is: ``prompt`` (the code before the hole) is the prefix, ``suffix``
the code after it, and a middle passes when ``prompt + middle + suffix + "\\n" + test + "\\n" +
"check(entry_point)"`` runs clean, the program of OpenAI's ``human_eval_infilling/execution.py``. A file
in the same six-field schema (a team's own tasks) works the same way.

A set whose canonical middles are all one line (its trailing newline included) is a *single-line* set:
the model's middle is cut after its first newline (the hole is one line, and the line's newline is part
of it, as in the canonical middles); any other set's middle runs until the model ends it (``</s>``) or
``--max_new_tokens``.

These replace the single-line tasks gitnetic used to build itself from ``--problems``: those were
OpenAI's 1,033 up to where the masked line's newline sat (in the suffix rather than the middle), with no
multi-line or random-span set, so their numbers compared with nothing published.
"""

from __future__ import annotations

import gzip
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from gitnetic.benchmark.params import DEFAULT_INFILL_SETS, INFILL_SET_NAMES, infill_set_name
from gitnetic.common.errors import DataError
from gitnetic.data.jsonl import json_lines

__all__ = [
    "DEFAULT_INFILL_SETS",
    "INFILL_SETS",
    "InfillSet",
    "InfillTask",
    "evenly_spread",
    "infill_set_path",
    "read_infill_set",
]

VENDORED = Path(__file__).with_name("human_eval_infilling")
# OpenAI's benchmark names (human-eval-infilling's --benchmark_name) -> the vendored files
INFILL_SETS: dict[str, str] = {
    "single-line": "HumanEval-SingleLineInfilling.jsonl.gz",
    "multi-line": "HumanEval-MultiLineInfilling.jsonl.gz",
    "random-span": "HumanEval-RandomSpanInfilling.jsonl.gz",
    "random-span-light": "HumanEval-RandomSpanInfillingLight.jsonl.gz",
}
assert tuple(INFILL_SETS) == INFILL_SET_NAMES
FIELDS = ("task_id", "prompt", "suffix", "canonical_solution", "test", "entry_point")


@dataclass(frozen=True)
class InfillTask:
    """One hole, in OpenAI's schema: ``prompt`` + middle + ``suffix`` is the program under test."""

    task_id: str
    prompt: str  # the code before the hole (the FIM prefix)
    suffix: str
    canonical_solution: str  # the hidden middle
    test: str
    entry_point: str

    def program(self, middle: str) -> str:
        """The test program of ``middle``, character for character as human-eval-infilling runs it."""
        return f"{self.prompt}{middle}{self.suffix}\n{self.test}\ncheck({self.entry_point})"


@dataclass(frozen=True)
class InfillSet:
    """A named task set read from one file; ``digest`` (of the file's bytes) keys its generations."""

    name: str
    path: Path
    digest: str
    tasks: tuple[InfillTask, ...]

    @cached_property
    def single_line(self) -> bool:
        """Every canonical middle is one whole line: the model's middle ends after its first newline."""
        return all(
            t.canonical_solution.endswith("\n") and t.canonical_solution.count("\n") == 1 for t in self.tasks
        )


def infill_set_path(spec: str) -> Path:
    """A set name -> its vendored file; anything else is a path that must exist."""
    if spec in INFILL_SETS:
        return VENDORED / INFILL_SETS[spec]
    path = Path(spec)
    if not path.is_file():
        raise DataError(
            f"infilling set {spec!r} is neither one of {', '.join(INFILL_SETS)} nor an existing file; pass "
            f"one of those names or a JSONL(.gz) file with fields {', '.join(FIELDS)}"
        )
    return path


def read_infill_set(spec: str) -> InfillSet:
    """All tasks of a set, in file order; a bad record is a one-line error naming its line."""
    path = infill_set_path(spec)
    try:
        data = path.read_bytes()
        text = gzip.decompress(data) if path.name.endswith(".gz") else data
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read infilling set {path}: {exc}") from None
    tasks: list[InfillTask] = []
    seen: set[str] = set()
    hint = "each line must be one task object"
    for lineno, record in json_lines(text.splitlines(), path, hint):
        missing = [k for k in FIELDS if not isinstance(record, dict) or not isinstance(record.get(k), str)]
        if missing:
            raise DataError(
                f"{path}:{lineno} lacks string field(s) {', '.join(missing)}; each infilling task needs "
                f"{', '.join(FIELDS)} (human-eval-infilling's schema)"
            )
        if record["task_id"] in seen:
            raise DataError(f"{path}:{lineno} repeats task_id {record['task_id']!r}")
        seen.add(record["task_id"])
        tasks.append(InfillTask(**{k: record[k] for k in FIELDS}))
    if not tasks:
        raise DataError(f"infilling set {path} holds no tasks")
    return InfillSet(infill_set_name(spec), path, hashlib.sha256(data).hexdigest()[:16], tuple(tasks))


def evenly_spread(tasks: tuple[InfillTask, ...], limit: int) -> tuple[InfillTask, ...]:
    """At most ``limit`` tasks (0 = all) spread evenly over the set, so a bounded run samples every part
    of HumanEval instead of the first few problems' many holes."""
    if not limit or limit >= len(tasks):
        return tasks
    return tuple(tasks[i * len(tasks) // limit] for i in range(limit))
