"""A full disk is one line in every stage (``gitnetic/cli/main.py``): "no space left on device writing X;
free space and rerun", exit 2, and the outputs of an earlier run stay as they were, with no temporaries
left beside them (issue 29 item 4).

Each test runs on a small tmpfs filled to the last byte (``tests.helpers.disk``; skipped where no tmpfs
can be mounted). The stages run in-process, so their stderr is captured whole.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitnetic.cli import main as cli_main
from tests.helpers import GPT2_TINY, fill, small_tmpfs


def files_of(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), the filler left out."""
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != ".filler"
    }


def assert_one_line_disk_full(err: str, command: str, written: Path) -> None:
    """One error line, the last, naming the output (progress bars' carriage-return lines aside)."""
    lines = [line.rsplit("\r", 1)[-1] for line in err.splitlines()]
    assert "Traceback" not in err and sum("error" in line for line in lines) == 1, err
    assert lines[-1].startswith(f"gitnetic {command}: error: no space left on device writing "), err
    assert str(written) in lines[-1] and lines[-1].endswith("; free space and rerun"), err


@pytest.mark.parametrize("leave", [0, 16 * 1024], ids=["full", "shards-do-not-fit"])
def test_preprocess_on_a_full_disk(leave, tmp_path, tiny_tokenizer, tiny_corpus_jsonl, capsys):
    argv = ["preprocess", "--tokenizer_path", str(tiny_tokenizer), "--input_dir", str(tiny_corpus_jsonl)]
    with small_tmpfs(tmp_path / "disk", "2m") as disk:
        out = disk / "bin"
        assert cli_main.main([*argv, "--output_dir", str(out), "--workers", "1"]) == 0
        before = files_of(out)
        fill(disk, leave)
        capsys.readouterr()
        assert cli_main.main([*argv, "--output_dir", str(out), "--workers", "1"]) == 2
        assert_one_line_disk_full(capsys.readouterr().err, "preprocess", out)
        assert files_of(out) == before


def test_evaluate_on_a_full_disk(tmp_path, fresh_checkpoint, tiny_tokenizer, lm_shards, capsys):
    argv = [
        "evaluate", "--checkpoint", str(fresh_checkpoint), "--config_path", str(GPT2_TINY),
        "--tokenizer_path", str(tiny_tokenizer), "--data_prefix", str(lm_shards / "valid"),
        "--completion_samples", "0",
    ]  # fmt: skip
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "metrics" / "eval.json"
        out.parent.mkdir()
        out.write_text('{"loss": 1.0}\n')
        fill(disk)
        assert cli_main.main([*argv, "--output", str(out)]) == 2
        assert_one_line_disk_full(capsys.readouterr().err, "evaluate", out)
        assert files_of(disk) == {"metrics/eval.json": b'{"loss": 1.0}\n'}


@pytest.mark.parametrize("leave", [0, 64 * 1024], ids=["full", "weights-do-not-fit"])
def test_export_on_a_full_disk(leave, tmp_path, fresh_checkpoint, tiny_tokenizer, capsys):
    argv = [
        "export", "--checkpoint", str(fresh_checkpoint), "--config_path", str(GPT2_TINY),
        "--tokenizer_path", str(tiny_tokenizer),
    ]  # fmt: skip
    with small_tmpfs(tmp_path / "disk", "8m") as disk:
        out = disk / "models" / "hf"
        out.mkdir(parents=True)
        (out / "README.md").write_text("an earlier export\n")
        fill(disk, leave)
        assert cli_main.main([*argv, "--output_dir", str(out)]) == 2
        assert_one_line_disk_full(capsys.readouterr().err, "export", out)
        assert files_of(disk) == {"models/hf/README.md": b"an earlier export\n"}


@pytest.mark.parametrize("workers", ["1", "2"])
def test_corpus_on_a_full_disk(workers, tmp_path, tiny_corpus_dir, capsys):
    src = tmp_path / "src"
    shutil.copytree(tiny_corpus_dir, src)
    argv = [
        "corpus",
        "--source",
        "dir",
        "--path",
        str(src),
        "--splits.valid_ratio",
        "0.2",
        "--splits.test_ratio",
        "0.2",
    ]
    argv += ["--num_workers", workers]
    with small_tmpfs(tmp_path / "disk", "1m") as disk:
        out = disk / "corpus"
        assert cli_main.main([*argv, "--out_dir", str(out)]) == 0
        before = files_of(out)
        fill(disk)
        capsys.readouterr()
        assert cli_main.main([*argv, "--out_dir", str(out)]) == 2
        assert_one_line_disk_full(capsys.readouterr().err, "corpus", out)
        assert files_of(out) == before


def test_train_on_a_full_disk_still_says_which_checkpoint_and_how_to_resume(
    tmp_path, tiny_tokenizer, lm_shards
):
    """Train had its own one line before (training/resume.py catches an OSError): the writers'
    DiskFullError is one, so that message, naming the checkpoint and the resume, is kept."""
    from tests.helpers import run_gitnetic, tiny_train_args

    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        save_dir = disk / "ckpt"
        run = run_gitnetic(*tiny_train_args(tiny_tokenizer, lm_shards, save_dir, steps=2), cwd=tmp_path)
        assert run.returncode == 2, run.stderr[-3000:]
        line = run.stderr.strip().splitlines()[-1]
        assert line.startswith(f"gitnetic train: error: could not write checkpoint {save_dir}"), line
        assert "(No space left on device)" in line and "Traceback" not in run.stderr
        assert not [p for p in save_dir.rglob("*") if p.is_file()]
