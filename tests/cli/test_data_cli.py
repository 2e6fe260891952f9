"""``python -m gitnetic corpus`` and ``python -m gitnetic tokenizer`` as real subprocesses."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from gitnetic.cli import corpus as corpus_cli
from gitnetic.cli import tokenizer as tokenizer_cli
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.tokenizer.load import load_tokenizer
from gitnetic.data.tokenizer.params import TokenizerParams, TokenizerStageParams
from tests.helpers import child_env, run_gitnetic


def gitnetic(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """The data stages as real subprocesses, warnings not silenced (their stderr must stay one line)."""
    return run_gitnetic(*args, cwd=cwd, env=child_env())


def test_corpus_then_tokenizer_from_params_yaml(tiny_corpus_dir: Path, tmp_path: Path) -> None:
    params = {
        "corpus": {
            "source": "dir",
            "path": str(tiny_corpus_dir),
            "exclude": ["tests/**"],
            "splits": {"valid_ratio": 0.0, "test_ratio": 0.0},
            "out_dir": "data/corpus",
        },
        "tokenizer": {
            "train_file": "data/corpus/train.jsonl",
            "out_dir": "data/tokenizer",
            "vocab_size": 300,
        },
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))

    run = gitnetic("corpus", "--config", "params.yaml:corpus", "--max_files", "5", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "wrote 5 documents" in run.stdout  # the flag overrides the YAML (no max_files there)
    stats = json.loads((tmp_path / "data/corpus/stats.json").read_text())
    assert stats["documents"]["train"] == 5 and stats["stopped_by"] == "max_files"

    run = gitnetic("tokenizer", "--config", "params.yaml:tokenizer", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "vocab size 300" in run.stdout and "5 documents" in run.stdout
    tok = load_tokenizer(
        tmp_path / "data/tokenizer"
    )  # AutoTokenizer loading: tests/data/tokenizer/test_tokenizer.py
    assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id, tok.mask_token_id) == (
        0,
        1,
        2,
        3,
        4,
    )
    assert len(tok) == 300


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["corpus", "--source", "dir", "--path", "no/such/folder"], "gitnetic corpus: error: source folder"),
        (["corpus", "--config", "params.yaml:nosection"], "gitnetic corpus: error: config file"),
        (["tokenizer", "--train_file", "missing.jsonl"], "gitnetic tokenizer: error: train split"),
        (
            ["corpus", "--source", "dir", "--path", ".", "--out_dir", "bad.jsonl/out"],
            "gitnetic corpus: error: cannot use bad.jsonl/out: Not a directory",
        ),
        (
            ["tokenizer", "--train_file", "bad.jsonl", "--vocab_size", "300"],
            "gitnetic tokenizer: error: bad.jsonl:2",
        ),
        (
            ["corpus", "--sources", "name: x, type: dir"],
            "gitnetic corpus: error: corpus.sources[0]: --sources 'name: x, type: dir' is not valid YAML",
        ),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(args: list[str], expected: str, tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("corpus: {}\n")
    (tmp_path / "bad.jsonl").write_text('{"text": "x = 1"}\n{"text": truncated\n')
    run = gitnetic(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), run.stderr


@pytest.mark.parametrize(
    ("module", "params_types"),
    [(corpus_cli, [CorpusParams, CorpusJobParams]), (tokenizer_cli, [TokenizerStageParams, TokenizerParams])],
)
def test_help_lists_every_param(module, params_types, capsys: pytest.CaptureFixture[str]) -> None:
    import dataclasses

    with pytest.raises(SystemExit) as exit_info:
        module.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert module.DESCRIPTION.split()[0] in out
    for dtype in params_types:
        for f in dataclasses.fields(dtype):
            assert f"--{f.name}" in out, f.name


def test_cli_parses_flags_into_params() -> None:
    params, job, _ = corpus_cli.build_parser().parse_args_into_dataclasses(
        ["--source", "git", "--repo", "/r", "--rev", "v1", "--include", "*.py", "*.pyi", "--exclude", "t/**"]
    )
    assert job.job == "all"
    assert (params.source, params.path, params.rev) == ("git", "/r", "v1")
    assert (params.include, params.exclude) == (["*.py", "*.pyi"], ["t/**"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["tokenizer", "--train_file", "latin1.jsonl", "--vocab_size", "300"],
            "gitnetic tokenizer: error: latin1.jsonl:2 is not UTF-8 text (byte 0xe9",
        ),
        (
            ["tokenizer", "--train_file", "folder"],
            "gitnetic tokenizer: error: --train_file folder is a directory",
        ),
        (
            ["tokenizer", "--train_file", "pipe"],
            "gitnetic tokenizer: error: --train_file pipe is not a regular file (a named pipe)",
        ),
        (
            ["tokenizer", "--config", "folder:tokenizer"],
            "gitnetic tokenizer: error: config file folder is a dir",
        ),
        (
            ["tokenizer", "--config", "params.yaml:tokenizer"],
            "gitnetic tokenizer: error: params.yaml:tokenizer: key 'vocab_size' must be int, got a list",
        ),
        (
            ["preprocess", "--config", "params.yaml:preprocess"],
            "gitnetic preprocess: error: params.yaml:preprocess: key 'workers' must be int, got a mapping",
        ),
        (
            ["corpus", "--config", "params.yaml:corpus"],
            "gitnetic corpus: error: params.yaml:corpus: key 'splits.valid_ratio' must be float, got a list",
        ),
    ],
)
def test_bad_files_and_wrong_type_values_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    """Issue 29 items 4 and 7: non-UTF-8 training text, a folder or named pipe as a file, and a YAML list or
    mapping where a number goes were tracebacks or said "does not exist"."""
    import os

    (tmp_path / "params.yaml").write_text(
        "tokenizer:\n  vocab_size: [300]\ntrain_file: x\npreprocess:\n  workers: {a: 1}\n"
        "corpus:\n  splits: {valid_ratio: [0.1]}\n"
    )
    (tmp_path / "latin1.jsonl").write_bytes(b'{"text": "x = 1"}\n{"text": "caf\xe9"}\n')
    (tmp_path / "folder").mkdir()
    os.mkfifo(tmp_path / "pipe")
    run = gitnetic(*args, cwd=tmp_path)
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(expected), run.stderr
