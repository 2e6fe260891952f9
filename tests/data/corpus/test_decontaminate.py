"""Corpus decontamination: a HumanEval solution or docstring planted inside a larger file drops that
file (counted per benchmark in stats.json); short solutions and unrelated code are kept."""

from __future__ import annotations

import json
from pathlib import Path

from gitnetic.data.corpus.decontaminate import Decontaminator
from gitnetic.data.corpus.params import CorpusParams, DecontaminateParams, NearDupParams, SplitParams
from gitnetic.data.corpus.stage import collect_corpus
from gitnetic.data.problems import read_problems
from tests.helpers import generated_modules, write_tree

PROBLEMS = read_problems("humaneval")


def kept_paths(out: Path) -> set[str]:
    return {
        json.loads(line)["path"]
        for split in ("train", "valid", "test")
        for line in (out / f"{split}.jsonl").open()
    }


def test_planted_solution_and_docstring_drop_their_files(tmp_path: Path) -> None:
    clean = generated_modules(seed=3, count=6)
    solution = PROBLEMS[0].canonical_solution  # the solution alone, without the prompt's docstring
    # reindented inside a method of other code: whitespace-normalised matching still finds it
    method = "\n\nclass Helpers:\n    def close(self, numbers, threshold):\n"
    planted = clean[0] + method + "".join(f"    {line}\n" for line in solution.splitlines()) + clean[1]
    docstring = PROBLEMS[10].prompt.split('"""')[1]
    with_doc = clean[2] + '\n\ndef other():\n    """' + docstring.replace("\n", "\n  ") + '"""\n' + clean[3]
    user = tmp_path / "mine.jsonl"
    user.write_text(json.dumps({"task_id": "mine/0", "prompt": "def secret_task(x):\n", "entry_point": "secret_task",
                                "test": "", "canonical_solution": "    return sorted(set(x), key=lambda v: (-v, str(v)))\n"}) + "\n")  # fmt: skip
    short = PROBLEMS[53].canonical_solution  # "return x + y": too short to be evidence
    assert len(" ".join(short.split())) < 32
    files = {
        **{f"clean{i}.py": text for i, text in enumerate(clean)},
        "planted.py": planted,
        "with_doc.py": with_doc,
        "uses_mine.py": clean[4] + "\ndef f(x):\n    return sorted(set(x),  key=lambda v: (-v, str(v)))\n",
        "short.py": clean[5] + "\ndef add(x, y):\n" + short,
    }
    src = write_tree(tmp_path / "src", files)
    out = tmp_path / "out"
    stats = collect_corpus(
        CorpusParams(
            source="dir",
            path=str(src),
            out_dir=str(out),
            neardup=NearDupParams(enabled=False),
            splits=SplitParams(valid_ratio=0.0, test_ratio=0.0),
            decontaminate=DecontaminateParams(benchmarks=["humaneval", str(user)]),
        )  # fmt: skip
    )
    assert kept_paths(out) == {f"clean{i}.py" for i in range(6)} | {"short.py"}
    assert stats.decontaminated == {"humaneval": 2, "mine.jsonl": 1}
    assert json.loads((out / "stats.json").read_text())["decontaminated"] == {"humaneval": 2, "mine.jsonl": 1}
    # off: everything is kept
    off = collect_corpus(
        CorpusParams(
            source="dir",
            path=str(src),
            out_dir=str(tmp_path / "off"),
            neardup=NearDupParams(enabled=False),
            splits=SplitParams(valid_ratio=0.0, test_ratio=0.0),
            decontaminate=DecontaminateParams(benchmarks=[]),
        )  # fmt: skip
    )
    assert off.total_documents == len(files) and off.decontaminated == {}


def test_every_canonical_solution_is_found_unless_trivially_short() -> None:
    finder = Decontaminator(["humaneval"])
    found = sum(
        finder.contaminated("import os\n\n" + p.prompt + p.canonical_solution + "\nx = 1\n") is not None
        for p in PROBLEMS
    )
    assert found == len(PROBLEMS)  # each prompt's docstring is long enough even when the solution is not
    assert finder.contaminated("\n".join(generated_modules(seed=1, count=20))) is None
