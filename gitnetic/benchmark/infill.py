"""Execution-checked single-line infilling, built from HumanEval-schema problems.

Each non-blank line of a problem's canonical solution is masked in turn (the way OpenAI's HumanEval
single-line infilling set is built from the same problems; 1,033 tasks here as there): the model sees the prompt plus the lines
before as the prefix and the lines after as the suffix, in the FIM layout it was trained with, and
writes the masked line. The filled-in program then runs the problem's tests in the sandbox: pass@1 by
execution, reported next to exact match (the only score harnesses give infilling), which misses every
right line written differently (``x+1`` for ``x + 1``) and counts nothing about whether code runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from gitnetic.data.problems import Problem

__all__ = ["InfillTask", "infill_tasks"]


@dataclass(frozen=True)
class InfillTask:
    """One masked line: ``prefix + line + suffix`` is the problem's prompt plus canonical solution."""

    task_id: str  # "<problem task_id>/<line number in the solution>"
    problem: Problem
    prefix: str
    suffix: str
    line: str  # the masked line without its newline (indentation included)

    def program(self, middle: str) -> str:
        """The problem's test program with ``middle`` in place of the masked line."""
        return self.problem.program(self.prefix[len(self.problem.prompt) :] + middle + self.suffix)


def infill_tasks(problems: list[Problem]) -> list[InfillTask]:
    """Every non-blank solution line of every problem with a canonical solution, in order."""
    tasks = []
    for problem in problems:
        lines = problem.canonical_solution.splitlines(keepends=True)
        for j, line in enumerate(lines):
            text = line.rstrip("\r\n")
            if not text.strip():
                continue
            prefix = problem.prompt + "".join(lines[:j])
            suffix = line[len(text) :] + "".join(lines[j + 1 :])
            tasks.append(InfillTask(f"{problem.task_id}/{j}", problem, prefix, suffix, text))
    return tasks
