"""Benchmark decontamination: drop corpus documents that contain a benchmark problem's text.

A model trained on HumanEval's solutions scores well on HumanEval without writing better code. As
BigCode did for StarCoder, a document is dropped when, with every run of whitespace collapsed to one
space, it contains any problem's **docstring** (each function docstring of the prompt) or **canonical
solution**; needles shorter than ``min_chars`` after normalisation (``return a + b``) are not used,
since they occur in innocent code. Matching is one Aho-Corasick pass per document (``ahocorasick_rs``).

What this catches: copies of a problem's solution or docstring inside larger files, reindented or
rewrapped. What it does not: paraphrases, renamed variables, solutions in other languages, or
translations of the docstring; near-miss copies (one changed character) also pass. See docs/benchmark.md.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

from gitnetic.data.problems import HUMANEVAL, Problem, read_problems, resolve_problems

__all__ = ["Decontaminator", "normalise", "problem_needles"]


def normalise(text: str) -> str:
    """Every run of whitespace as one space, none at the ends."""
    return " ".join(text.split())


def _docstrings(prompt: str) -> list[str]:
    """The function docstrings of a prompt (which ends inside the function, after its docstring)."""
    try:
        tree = ast.parse(prompt + "\n    pass\n")
    except SyntaxError:
        return []
    docs = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                docs.append(doc)
    return docs


def problem_needles(problems: list[Problem], min_chars: int) -> list[str]:
    """The normalised docstrings and canonical solutions of ``problems`` at least ``min_chars`` long."""
    texts = [doc for p in problems for doc in _docstrings(p.prompt)]
    texts += [p.canonical_solution for p in problems]
    needles = {normalise(t) for t in texts}
    return sorted(n for n in needles if len(n) >= min_chars)


@dataclass
class Decontaminator:
    """Finds which benchmark (if any) a document contains; counts drops per benchmark."""

    specs: list[str]
    min_chars: int = 32
    dropped: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import ahocorasick_rs

        needles: list[str] = []
        self.owner: list[str] = []
        for spec in self.specs:
            name = HUMANEVAL if spec == HUMANEVAL else resolve_problems(spec).name
            found = problem_needles(read_problems(spec), self.min_chars)
            needles += found
            self.owner += [name] * len(found)
            self.dropped.setdefault(name, 0)
        # over the UTF-8 bytes: a str automaton (what this used before) searches the same UTF-8 text but
        # converts every match's offset back to characters, half its cost (bench/clean_equivalence.py).
        # Default implementation: a DFA of these long needles takes 40 MB for no measurable gain.
        self.matcher = (
            ahocorasick_rs.BytesAhoCorasick([n.encode("utf-8") for n in needles]) if needles else None
        )

    def contaminated(self, text: str) -> str | None:
        """The name of the first benchmark found in ``text`` (counted), else None."""
        if self.matcher is None:
            return None
        # (a lone surrogate raises UnicodeEncodeError here, as it did in the str automaton)
        normalised = normalise(text).encode("utf-8")
        hits = self.matcher.find_matches_as_indexes(normalised, overlapping=False)
        if not hits:
            return None
        name = self.owner[hits[0][0]]
        self.dropped[name] += 1
        return name
