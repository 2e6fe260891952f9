"""OpenAI's HumanEval infilling sets as gitnetic ships and runs them: the vendored files are the published
ones (hashes, task counts, schema), and every canonical middle passes in the sandbox, so a model's
infill pass@1 is measured against the same 100 % ceiling as human-eval-infilling's.

The sandbox runs all 1,033 single-line tasks and an evenly spread 100 of each other set here (about
1,300 programs; the whole 8,652 take minutes on 2 cores: ``python bench/infill_sets.py``, recorded
in bench/RESULTS.md at 100 % for every set).
"""

from __future__ import annotations

import gzip
import hashlib
import json

import pytest

from gitnetic.benchmark.infill import (
    DEFAULT_INFILL_SETS,
    INFILL_SETS,
    VENDORED,
    InfillTask,
    evenly_spread,
    read_infill_set,
)
from gitnetic.benchmark.params import SandboxParams
from gitnetic.benchmark.sandbox import Sandbox
from gitnetic.common.errors import DataError

# From OpenAI's repository (data/, commit 88062ff), as its README lists them
PUBLISHED = {
    "single-line": (1033, "1277073e7ddce163ef68598c2bca777f688a53df99422f097e37362090f88e1f"),
    "multi-line": (5815, "2f341612eee1d35da1357a4f365e0c0b3ba6e2b62eb491e88aaefa4855af0349"),
    "random-span": (1640, "b4f330d8a8ff97bf85d9def497dffcae4d741e506449386a877236e422e33e8d"),
    "random-span-light": (164, "1432250ecac0cb56e6f97f8faf0970419ef892a98fda7e1f5aa4c4b87209b760"),
}


@pytest.fixture(scope="module")
def sets():
    return {name: read_infill_set(name) for name in INFILL_SETS}


def test_the_vendored_files_are_openais_with_their_license(sets) -> None:
    assert DEFAULT_INFILL_SETS == ("single-line", "multi-line", "random-span")
    assert (
        "MIT License" in (VENDORED / "LICENSE").read_text() and "OpenAI" in (VENDORED / "LICENSE").read_text()
    )
    for name, (count, sha256) in PUBLISHED.items():
        path = VENDORED / INFILL_SETS[name]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, name
        assert sha256 in (VENDORED / "README.md").read_text()
        tasks = sets[name].tasks
        assert len(tasks) == count and tasks[0].task_id.split("/")[1:3] == ["HumanEval", "0"]
        assert tasks[-1].task_id.split("/")[1:3] == ["HumanEval", "163"]
    # only the single-line set's middles are one whole line each: the model's middle is cut after a newline
    assert [name for name, s in sets.items() if s.single_line] == ["single-line"]


def test_a_task_is_run_as_human_eval_infilling_runs_it(sets) -> None:
    task = sets["multi-line"].tasks[0]
    record = json.loads(gzip.open(VENDORED / INFILL_SETS["multi-line"], "rt").readline())
    assert task == InfillTask(**{k: record[k] for k in ("task_id", "prompt", "suffix", "canonical_solution",
                                                        "test", "entry_point")})  # fmt: skip
    middle = "    pass\n"
    expected = (record["prompt"] + middle + record["suffix"] + "\n" + record["test"] + "\n"
                + f"check({record['entry_point']})")  # fmt: skip
    assert task.program(middle) == expected


def test_evenly_spread_keeps_the_order_and_reaches_the_end(sets) -> None:
    tasks = sets["multi-line"].tasks
    picked = evenly_spread(tasks, 100)
    assert len(picked) == 100 and picked[0] == tasks[0] and picked == evenly_spread(tasks, 100)
    positions = [tasks.index(t) for t in picked]
    assert positions == sorted(set(positions)) and len(tasks) - positions[-1] <= -(-len(tasks) // 100)
    assert evenly_spread(tasks, 0) == tasks and evenly_spread(tasks, 10**6) == tasks


def test_every_canonical_middle_passes_and_an_empty_one_mostly_fails(sets) -> None:
    checked = {
        name: s.tasks if name == "single-line" else evenly_spread(s.tasks, 100) for name, s in sets.items()
    }
    programs = [t.program(t.canonical_solution) for tasks in checked.values() for t in tasks]
    empty = evenly_spread(sets["single-line"].tasks, 60)
    with Sandbox(SandboxParams(timeout=5.0, workers=2)) as sandbox:
        outcomes = list(sandbox.map(programs + [t.program("") for t in empty]))
    canonical, holes = outcomes[: len(programs)], outcomes[len(programs) :]
    ids = [t.task_id for tasks in checked.values() for t in tasks]
    failed = [(i, o.status, o.detail) for i, o in zip(ids, canonical, strict=True) if not o.passed]
    assert not failed and len(canonical) == 1033 + 3 * 100
    # the same harness fails a program whose hole is left empty (all but the few a test never reaches)
    assert sum(o.passed for o in holes) <= 6


def test_a_file_in_the_same_schema_is_a_set(tmp_path, sets) -> None:
    own = tmp_path / "team-holes.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(VENDORED / INFILL_SETS["single-line"], "rt")][:5]
    with gzip.open(own, "wt") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in rows)
    mine = read_infill_set(str(own))
    assert mine.name == "team-holes" and mine.tasks == sets["single-line"].tasks[:5] and mine.single_line
    (tmp_path / "twice.jsonl").write_text("".join(json.dumps(rows[0]) + "\n" for _ in range(2)))
    with pytest.raises(DataError, match=r"twice.jsonl:2 repeats task_id"):
        read_infill_set(str(tmp_path / "twice.jsonl"))
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="holds no tasks"):
        read_infill_set(str(tmp_path / "empty.jsonl"))
