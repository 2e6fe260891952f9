"""The resume store of interrupted DVC experiments: where it is, what it keeps, what it puts back.

The end-to-end behaviour (kill -9 during ``dvc exp run``, run again, bit-identical result) is in
``tests/e2e/test_experiments.py``; here the file moves, on plain files, in milliseconds.
"""

from __future__ import annotations

import os
from pathlib import Path

from gitnetic.training.resume import ResumeStore


def test_the_store_lives_in_the_dvc_repository_of_the_run(tmp_path: Path) -> None:
    (tmp_path / ".dvc").mkdir()
    store = ResumeStore.for_run("abc", {"DVC_ROOT": str(tmp_path)})
    assert store is not None and store.path == tmp_path / ".dvc" / "tmp" / "gitnetic-resume" / "abc"
    assert ResumeStore.for_run("abc", {}) is None  # not under DVC: save_dir alone resumes
    assert ResumeStore.for_run("abc", {"DVC_ROOT": str(tmp_path / "nothing")}) is None
    assert ResumeStore.for_run("abc", {"DVC_ROOT": str(tmp_path), "GITNETIC_RESUME_STORE": "off"}) is None
    chosen = ResumeStore.for_run("abc", {"GITNETIC_RESUME_STORE": str(tmp_path / "elsewhere")})
    assert chosen is not None and chosen.path == tmp_path / "elsewhere" / "abc"


def write(path: Path, text: str) -> Path:
    """Replace ``path`` by a new file, as the checkpoint writer and DVC's checkout both do (a hard link in
    the store keeps the old content; nothing writes into an existing checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def test_keep_then_restore_replaces_the_baselines_checkpoints_and_logs(tmp_path: Path) -> None:
    os.chdir(tmp_path)
    store = ResumeStore(tmp_path / "store", "run")
    assert store.latest() is None and store.restore("ckpt", "live") is None
    write(Path("live/plots/loss.tsv"), "step\tloss\n1\t5.0\n")
    store.keep(4, write(Path("ckpt/checkpoint_step4.ckpt"), "step 4"), "live")
    write(Path("live/plots/loss.tsv"), "step\tloss\n1\t5.0\n2\t4.0\n")
    store.keep(8, write(Path("ckpt/checkpoint_step8.ckpt"), "step 8"), "live")
    step, kept = store.latest()  # type: ignore[misc]
    assert step == 8 and kept.read_text() == "step 8"
    assert [p.name for p in store.path.iterdir()] == ["step-8"]  # only the newest is kept

    # what `dvc exp run` leaves before the rerun: the baseline's checkpoints and logs
    for name in ("checkpoint_step8.ckpt", "checkpoint_step60.ckpt", "checkpoint_last.ckpt"):
        write(Path("ckpt") / name, "baseline")
    write(Path("live/plots/loss.tsv"), "baseline\n")
    assert store.restore("ckpt", "live") == 8
    assert sorted(p.name for p in Path("ckpt").iterdir()) == ["checkpoint_last.ckpt", "checkpoint_step8.ckpt"]
    assert Path("ckpt/checkpoint_last.ckpt").read_text() == "step 8"
    assert os.path.samefile("ckpt/checkpoint_last.ckpt", kept)  # linked, not copied
    assert Path("live/plots/loss.tsv").read_text() == "step\tloss\n1\t5.0\n2\t4.0\n"


def test_finish_removes_the_entry_and_a_restored_checkpoint_an_uninterrupted_run_would_not_keep(
    tmp_path: Path,
) -> None:
    os.chdir(tmp_path)
    store = ResumeStore(tmp_path / "gitnetic-resume", "run")
    store.keep(8, write(Path("ckpt/checkpoint_step8.ckpt"), "8"), None)
    store.restore("ckpt", None)
    for step in (12, 16):  # the resumed run went on
        write(Path(f"ckpt/checkpoint_step{step}.ckpt"), str(step))
    store.finish("ckpt", num_last=2)
    assert sorted(p.name for p in Path("ckpt").iterdir()) == [
        "checkpoint_last.ckpt", "checkpoint_step12.ckpt", "checkpoint_step16.ckpt",
    ]  # fmt: skip
    assert not store.path.exists() and not store.path.parent.exists()


def test_a_newer_checkpoint_of_the_same_run_in_save_dir_wins_over_the_store(tmp_path: Path) -> None:
    """Killed between writing a checkpoint and keeping it (under `dvc repro`, which checks nothing out):
    the newest checkpoint is only in save_dir, and the rerun must resume from it, not the store's."""
    import torch

    from gitnetic.training.resume import FINGERPRINT_KEY

    os.chdir(tmp_path)
    store = ResumeStore(tmp_path / "gitnetic-resume", "run")
    store.keep(8, write(Path("ckpt/checkpoint_step8.ckpt"), "8"), None)
    torch.save({FINGERPRINT_KEY: {"digest": "run"}}, "ckpt/checkpoint_step12.ckpt")
    assert store.restore("ckpt", None) is None
    assert sorted(p.name for p in Path("ckpt").iterdir()) == [
        "checkpoint_step12.ckpt",
        "checkpoint_step8.ckpt",
    ]
    torch.save({FINGERPRINT_KEY: {"digest": "another run"}}, "ckpt/checkpoint_step12.ckpt")  # a baseline's
    assert store.restore("ckpt", None) == 8
    assert sorted(p.name for p in Path("ckpt").iterdir()) == ["checkpoint_last.ckpt", "checkpoint_step8.ckpt"]
