"""The corpus stage spread out: N worker processes and the sign/decide/write fan-out write the same bytes.

Every way of running the stage is compared byte for byte (the three split files and ``stats.json``, in
the same ``out_dir``) against one process, on corpora built to exercise each decision: redaction,
exact and near duplicates within and across sources (a folder and a git repository, whose blobs the
parent reads), quality filters, binary/non-UTF-8/empty files, a ``max_files`` cap that stops a source in
the middle of a part, and the small-corpus split floor.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import psutil
import pytest
import yaml

from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams, PartsParams
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stage import collect_corpus, run_corpus
from tests.helpers import REPO, run_gitnetic, start_gitnetic, write_tree
from tests.helpers.cli import wait_until
from tests.helpers.corpora import git_tree, mixed_tree, module

OUTPUTS = [f"{split}.jsonl" for split in SPLITS] + ["stats.json"]


def snapshot(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


def clear(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)


def fan_out(params: CorpusParams) -> None:
    """The Snakemake jobs in order, as the CLI runs them (``--job sign|decide|write``)."""
    for i in range(params.parts.count):
        run_corpus(params, CorpusJobParams(job="sign", part_index=i))
    run_corpus(params, CorpusJobParams(job="decide"))
    for split in SPLITS:
        run_corpus(params, CorpusJobParams(job="write", split=split))


CASES = {
    "two sources, cap mid-source": dict(
        sources=[
            {"name": "code", "type": "dir", "path": "{tree}", "max_files": 30},
            {"name": "lib", "type": "git", "path": "{repo}"},
        ],
        splits={"valid_ratio": 0.1, "test_ratio": 0.1},
    ),
    "one source, every document, split floor": dict(
        sources=[{"name": "code", "type": "dir", "path": "{tree}", "include": ["pkg/m0*.py", "keys.py"]}],
        splits={"valid_ratio": 0.01, "test_ratio": 0.01},
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_workers_and_fan_out_write_the_bytes_of_one_process(tmp_path: Path, case: str) -> None:
    tree, repo = mixed_tree(tmp_path / "tree"), git_tree(tmp_path / "repo")
    spec = json.loads(json.dumps(CASES[case]).replace("{tree}", str(tree)).replace("{repo}", str(repo)))
    out = tmp_path / "out"

    def params(**kw: object) -> CorpusParams:
        return CorpusParams(**{**spec, "out_dir": str(out), **kw})

    collect_corpus(params(num_workers=1))
    one = snapshot(out)
    stats = json.loads(one["stats.json"])
    assert stats["documents"]["total"] > 5
    if case.startswith("two"):  # the case exercises what it claims to
        code = stats["sources"]["code"]
        assert code["stopped_by"] == "max_files" and code["skipped"]["near_duplicate"] >= 1
        assert stats["sources"]["lib"]["skipped"]["duplicate"] == 1
        assert code["redacted"] and code["filtered"]["generated"] == 1
    else:  # the path hash gives 11 files no valid/test file at 1%: the floor moves one into each
        assert stats["documents"]["valid"] == stats["documents"]["test"] == 1
    runs = {
        "3 workers": lambda: collect_corpus(params(num_workers=3)),
        "3 sign jobs": lambda: fan_out(params(num_workers=1, parts=PartsParams(count=3))),
        "2 sign jobs x 2 workers": lambda: fan_out(params(num_workers=2, parts=PartsParams(count=2))),
        "7 sign jobs (more parts than some sources' files)": lambda: fan_out(
            params(num_workers=1, parts=PartsParams(count=7))
        ),
    }
    for name, run in runs.items():
        clear(out)
        run()
        got = snapshot(out)
        for file in OUTPUTS:
            assert got[file] == one[file], f"{name}: {file} differs from the one-process run"


def test_default_pipeline_corpus_is_unchanged(tmp_path: Path) -> None:
    """params.yaml's corpus, built by this code, has the bytes the code before worker processes wrote
    (recorded from commit ecc6839 on CPython 3.11.7's standard library, which the default corpus reads)."""
    if sys.version_info[:3] != (3, 11, 7):
        pytest.skip(f"recorded on CPython 3.11.7's stdlib; this is {sys.version.split()[0]}")
    section = yaml.safe_load((REPO / "params.yaml").read_text())["corpus"]
    out = tmp_path / "corpus"
    collect_corpus(CorpusParams.from_dict({**section, "out_dir": str(out)}))
    digests = {s: hashlib.sha256((out / f"{s}.jsonl").read_bytes()).hexdigest() for s in SPLITS}
    assert digests == {
        "train": "ea46a0be1b937eac5f1beca91ffa5df4137b23c14bcdeb67e18da0ecc3325f10",
        "valid": "b3fb13b390f14c610d93f485751ca3a45382c661fdf79e7bb1e881dd9e30ec89",
        "test": "8a3c9696ba8a267ad32eb6389029aa1bc1c0976b65cbecb2c1111ae8dfabbf1c",
    }
    stats = json.loads((out / "stats.json").read_text())
    stats.pop("out_dir")
    digest = hashlib.sha256(json.dumps(stats, sort_keys=True).encode()).hexdigest()
    assert digest == "120eb5c05f40a6d482f0f893da31252c46b1fd0d1f0c92bfd747f4265da3e440"


def file_sizes(folder: Path) -> list[int]:
    """Sizes of the files in ``folder`` now (a file removed meanwhile, e.g. a stale temporary, is skipped)."""
    sizes = []
    for path in folder.glob("*") if folder.exists() else ():
        with contextlib.suppress(FileNotFoundError):
            sizes.append(path.stat().st_size)
    return sizes


def pool_workers(stage: psutil.Process) -> list[psutil.Process]:
    """The stage's worker processes now: forked from it (so its command line), or from a forkserver. Not
    the short-lived processes a worker forks itself (``ctypes.util.find_library`` runs ``ldconfig``),
    which carry the same command line until they exec."""
    workers = []
    for child in stage.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):  # ZombieProcess too: it ended meanwhile
            parent = child.parent()
            forked = parent is not None and parent.pid == stage.pid and child.cmdline() == stage.cmdline()
            if forked or (parent is not None and "forkserver" in " ".join(parent.cmdline())):
                workers.append(child)
    return workers


def test_a_killed_worker_leaves_nothing_complete_and_the_rerun_gives_the_same_bytes(tmp_path: Path) -> None:
    # ~14 MB of distinct modules: seconds of work with two workers, time to see them writing
    files = {f"p{i // 100}/m{i:04d}.py": module(f"m{i}", 60, extra=f"\n# {i}\n") for i in range(1500)}
    tree = write_tree(tmp_path / "tree", files)
    out = tmp_path / "out"
    args = ["corpus", "--source", "dir", "--path", tree, "--max_bytes", "0", "--out_dir", out]
    reference = run_gitnetic(*args, "--num_workers", "1", cwd=tmp_path, timeout=600)
    assert reference.returncode == 0, reference.stderr[-3000:]
    before = snapshot(out)
    clear(out)

    # SIGTERM to the stage itself (how DVC, Snakemake and SLURM stop a job): its workers end with it
    proc = start_gitnetic(*args, "--num_workers", "2", cwd=tmp_path)
    stage = psutil.Process(proc.pid)
    wait_until(lambda: len(pool_workers(stage)) == 2, proc, "two workers")
    workers = pool_workers(stage)
    proc.terminate()
    proc.communicate(timeout=60)
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the stage: {alive}"
    assert not [p.name for p in out.glob("*") if p.name in OUTPUTS]
    clear(out)  # its temporaries too, so that the records awaited below are the next run's

    # kill -9 of a worker mid-run, once the first kept records are in the temporaries. The worker is
    # stopped first: stopped, it cannot end by itself, so the kill surely lands on a live worker (a
    # worker ending normally cannot be told from one killed after it ended), whatever the stage is
    # doing by then; and a worker death at any point of a run fails the run.
    proc = start_gitnetic(*args, "--num_workers", "2", cwd=tmp_path)
    stage = psutil.Process(proc.pid)
    wait_until(
        lambda: any(file_sizes(out)) and len(pool_workers(stage)) == 2, proc, "records written by two workers"
    )
    victim = pool_workers(stage)[0]
    victim.suspend()
    wait_until(
        lambda: victim.status() in (psutil.STATUS_STOPPED, psutil.STATUS_ZOMBIE), proc, "a stopped worker"
    )
    assert victim.status() == psutil.STATUS_STOPPED, (
        "the worker ended before it was stopped: the run was too short"
    )
    victim.kill()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2 and "worker process died" in err, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    left = sorted(p.name for p in out.iterdir()) if out.exists() else []
    assert not [name for name in left if name in OUTPUTS or name.endswith(".jsonl")], left

    rerun = run_gitnetic(*args, "--num_workers", "2", cwd=tmp_path, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert snapshot(out) == before


@pytest.mark.parametrize("stage_reacts", ["at once", "late"])
def test_ctrl_c_ends_a_two_worker_stage_with_one_line(tmp_path: Path, stage_reacts: str) -> None:
    """Issue 29 item 7: Ctrl-C (SIGINT to the whole foreground process group, as a terminal sends it) to a
    stage with two workers printed each worker's "Process corpus worker:" and traceback besides the stage's
    line. Now the workers leave the signal to the stage, which stops them: one line, exit 130 (the CLI's
    code for an interrupt), no output under a final name and no out_dir left (it was new).

    "late": the stage is stopped while the signal arrives and resumed after (as when it is busy in a long
    C call): the workers' reaction is then seen whatever the timing; "at once" is the plain Ctrl-C."""
    files = {f"p{i // 100}/m{i:04d}.py": module(f"m{i}", 60, extra=f"\n# {i}\n") for i in range(1500)}
    tree = write_tree(tmp_path / "tree", files)
    out = tmp_path / "out"
    args = [
        "corpus",
        "--source",
        "dir",
        "--path",
        tree,
        "--max_bytes",
        "0",
        "--out_dir",
        out,
        "--num_workers",
        "2",
    ]
    proc = start_gitnetic(*args, cwd=tmp_path, start_new_session=True)  # its own group, as in a terminal
    try:
        stage = psutil.Process(proc.pid)
        wait_until(
            lambda: any(file_sizes(out)) and len(pool_workers(stage)) == 2,
            proc,
            "records written by two workers",
        )
        workers = pool_workers(stage)
        if stage_reacts == "late":
            stage.suspend()
            wait_until(lambda: stage.status() == psutil.STATUS_STOPPED, proc, "a stopped stage", timeout=10)
        os.killpg(proc.pid, signal.SIGINT)
        if stage_reacts == "late":
            psutil.wait_procs(workers, timeout=3)  # time for workers that would end on SIGINT to end
            stage.resume()
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, f"workers outlived the stage: {alive}"
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines == ["gitnetic corpus: interrupted"], err[-3000:]
    assert "Process" not in err and "Traceback" not in err
    assert proc.returncode == 130
    assert not out.exists(), sorted(p.name for p in out.iterdir())
