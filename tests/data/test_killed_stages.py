"""Data stages killed at any point leave no output that looks complete.

Real ``python -m gitnetic corpus`` / ``preprocess`` processes are SIGKILLed mid-run (no handler, no
cleanup, like an out-of-memory kill or a node failure) at points read from the files they write. What is
left under the stage's final file names must be the previous complete version, byte for byte (or
nothing, on a first run); never a truncated file, and never a new split beside an old one. A rerun
removes the killed run's temporaries and completes.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from gitnetic.data.shards.indexed import IndexedDataset
from tests.helpers import run_gitnetic, start_gitnetic, stdlib_json_dir, wait_until

SPLITS = ("train", "valid", "test")


def gitnetic(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    proc = run_gitnetic(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def kill_when(args: list[str], cwd: Path, ready: Callable[[], bool]) -> None:
    """Start ``python -m gitnetic ARGS`` and SIGKILL it as soon as ``ready()``; it must still be running."""
    proc = start_gitnetic(*args, cwd=cwd, stdout=subprocess.DEVNULL)
    wait_until(ready, proc, "kill point", timeout=120, poll=0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL


def final_files(folder: Path) -> dict[str, str]:
    """Digest of every file under a final name (temporaries are hidden ``.NAME.*.tmp`` siblings)."""
    if not folder.is_dir():
        return {}
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file() and not p.name.startswith(".")
    }


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def has_temp(folder: Path, prefix: str, min_bytes: int = 0) -> Callable[[], bool]:
    def check() -> bool:
        for p in folder.glob(f".{prefix}.*.tmp") if folder.is_dir() else []:
            try:
                if p.stat().st_size >= min_bytes:
                    return True
            except FileNotFoundError:
                pass
        return False

    return check


def stdlib_docs() -> list[str]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return [p.read_text("utf-8") for p in sorted(root.glob("*.py"))[:80]]


def write_corpus(folder: Path, docs: list[str], repeat: int) -> None:
    """train gets ``repeat`` copies of ``docs`` (a few MB: a couple of seconds to binarize), valid and
    test one copy of a slice each."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": docs * repeat, "valid": docs[::2], "test": docs[1::4]}
    for split, texts in parts.items():
        with (folder / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            fh.writelines(json.dumps({"text": t}) + "\n" for t in texts)


def test_killed_preprocess_leaves_the_previous_shards_or_none(tmp_path: Path, tiny_tokenizer: Path) -> None:
    corpus, out = tmp_path / "corpus", tmp_path / "bin"
    docs = stdlib_docs()
    write_corpus(corpus, docs, repeat=6)
    args = ["preprocess", "--tokenizer_path", str(tiny_tokenizer), "--input_dir", str(corpus),
            "--output_dir", str(out), "--workers", "1"]  # fmt: skip

    # a first run killed while it writes the train split: no shard at all
    kill_when(args, tmp_path, has_temp(out, "train.bin", min_bytes=1))
    assert final_files(out) == {}

    gitnetic(*args, cwd=tmp_path)
    previous = final_files(out)
    assert sorted(previous) == sorted(f"{s}.{ext}" for s in SPLITS for ext in ("bin", "idx"))
    assert temporaries(out) == []  # the rerun removed the killed run's leftovers

    # new data; killed once train is written and valid is being written: still the previous set,
    # not a new train split beside the old valid/test ones
    write_corpus(corpus, docs[::-1], repeat=6)
    kill_when(args, tmp_path, has_temp(out, "valid.bin"))
    assert final_files(out) == previous

    gitnetic(*args, cwd=tmp_path)
    now = final_files(out)
    assert sorted(now) == sorted(previous) and now["train.bin"] != previous["train.bin"]
    assert temporaries(out) == []
    for split in SPLITS:
        assert len(IndexedDataset(out / split)) > 0


def test_killed_corpus_leaves_the_previous_splits(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    small = ["corpus", "--source", "dir", "--path", str(stdlib_json_dir()),
             "--splits.valid_ratio", "0.2", "--splits.test_ratio", "0.2", "--out_dir", str(out)]  # fmt: skip
    gitnetic(*small, cwd=tmp_path)
    previous = final_files(out)
    assert sorted(previous) == ["stats.json", "test.jsonl", "train.jsonl", "valid.jsonl"]

    # the whole standard library (about 10 MB): killed once its train split is being written
    big = ["corpus", "--source", "stdlib", "--max_bytes", "0", "--out_dir", str(out)]
    kill_when(big, tmp_path, has_temp(out, "train.jsonl", min_bytes=1 << 20))
    assert final_files(out) == previous
    assert temporaries(out)  # what the kill cut short is only in temporaries

    gitnetic(*small, cwd=tmp_path)
    assert final_files(out) == previous  # same input, same splits; the leftovers are gone
    assert temporaries(out) == []


@pytest.mark.parametrize("written", [1, 3])
def test_corpus_splits_are_replaced_as_a_group(tmp_path: Path, written: int) -> None:
    """The in-process view of the same guarantee: an error after some or all splits were written (before
    the group commit) leaves the old set whole, and a completed group replaces all of it."""
    from gitnetic.common.io import atomic_open_group

    out = tmp_path / "corpus"
    out.mkdir()
    for name in ("train.jsonl", "valid.jsonl", "test.jsonl", "stats.json"):
        (out / name).write_text(f"old {name}\n")
    previous = final_files(out)
    paths = [out / f"{s}.jsonl" for s in SPLITS]
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open_group(paths, invalidate=[out / "stats.json"]) as handles:
            for fh in handles[:written]:
                fh.write("new\n")
            raise RuntimeError("boom")
    assert final_files(out) == previous and temporaries(out) == []
    with atomic_open_group(paths, invalidate=[out / "stats.json"]) as handles:
        for fh, split in zip(handles, SPLITS, strict=True):
            fh.write(f"new {split}\n")
    assert {p.name: p.read_text() for p in paths} == {f"{s}.jsonl": f"new {s}\n" for s in SPLITS}
    assert not (out / "stats.json").exists()  # the caller writes the new marker last
