"""``generate``: errors on bad input, streaming, checkpoint == export, and FIM training then infilling."""

from __future__ import annotations

import io
import json
import os
import shutil
import threading
from pathlib import Path

import pytest

from gitnetic.cli import main as cli_main
from gitnetic.common.errors import ConfigError, DataError
from tests.helpers import GPT2_TINY, preprocess_shards, run_gitnetic, save_random_model


@pytest.fixture(scope="module")
def plain_folder(tmp_path_factory, tiny_tokenizer) -> Path:
    return save_random_model(tiny_tokenizer, tmp_path_factory.mktemp("plain") / "hf")


@pytest.fixture(scope="module")
def fim_folder(tmp_path_factory, fim_tokenizer) -> Path:
    return save_random_model(fim_tokenizer, tmp_path_factory.mktemp("fim") / "hf")


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    rc = cli_main.main(["generate", *map(str, args)])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_bad_input_gets_one_line_errors(tmp_path, capsys, plain_folder, fim_folder) -> None:
    def error(*args: str) -> str:
        rc, _, err = run_cli(capsys, *args)
        lines = [line for line in err.splitlines() if line.startswith("gitnetic generate: error:")]
        assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
        return lines[0]

    assert "does not exist" in error("--model", tmp_path / "nope", "--prompt", "x")
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"")
    assert "--config_path and --tokenizer_path" in error("--model", ckpt, "--prompt", "x")
    half = tmp_path / "half"
    half.mkdir()
    (half / "config.json").write_text((plain_folder / "config.json").read_text())
    assert "missing weights" in error("--model", half, "--prompt", "x")
    assert "no FIM tokens" in error("--model", plain_folder, "--prefix", "a = ", "--suffix", "\n")
    assert "context is 1024" in error("--model", plain_folder, "--prompt", "x " * 1100)
    marked = tmp_path / "no_cursor.py"
    marked.write_text("def f():\n    pass\n")
    assert "exactly once" in error("--model", fim_folder, "--infill_file", marked)
    assert "--temperature" in error("--model", plain_folder, "--prompt", "x", "--temperature", "-1")


def generate_error(capsys, *args: object) -> str:
    """The one error line of a failed run (exit 2, no traceback, nothing after it)."""
    rc, _, err = run_cli(capsys, *args)
    lines = [line for line in err.splitlines() if line.startswith("gitnetic generate: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert err.rstrip().endswith(lines[0]) and "LOAD REPORT" not in err, err
    return lines[0]


def test_a_prompt_that_is_not_utf8_is_a_one_line_error(tmp_path, capsys, monkeypatch, plain_folder) -> None:
    prompt = tmp_path / "latin1.py"
    prompt.write_bytes('def grüße():\n    return "ß"\n'.encode("latin-1"))
    message = generate_error(capsys, "--model", plain_folder, "--prompt_file", prompt)
    assert str(prompt) in message and "UTF-8" in message
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"x = '\xff'\n"), encoding="utf-8"))
    assert "UTF-8" in generate_error(capsys, "--model", plain_folder, "--prompt_file", "-")


def test_a_prompt_file_that_is_a_folder_says_so_and_a_pipe_is_read(tmp_path, capsys, plain_folder) -> None:
    message = generate_error(capsys, "--model", plain_folder, "--prompt_file", tmp_path)
    assert "is a directory" in message and "does not exist" not in message
    # a named pipe (as bash's --prompt_file <(...) passes) is read like a file
    fifo = tmp_path / "prompt.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=lambda: fifo.write_text("def f(x):"), daemon=True)
    writer.start()
    rc, _, err = run_cli(capsys, "--model", plain_folder, "--prompt_file", fifo, "--max_new_tokens", "3")
    if writer.is_alive():  # the pipe was not read: open it once so the writer does not block forever
        os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))
    writer.join(timeout=30)
    assert rc == 0, err


def test_weights_larger_than_the_config_are_a_one_line_error(tmp_path, capsys, plain_folder) -> None:
    folder = shutil.copytree(plain_folder, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "vocab_size": 100}))
    message = generate_error(capsys, "--model", folder, "--prompt", "x")
    assert str(folder) in message and "config.json" in message and "wte" in message


def test_a_tokenizer_larger_than_the_model_is_a_one_line_error(
    tmp_path, capsys, tiny_tokenizer, task_tokenizer_dir
) -> None:
    """A 320-token model whose folder holds a 512-token tokenizer (a 1k model with an 8k tokenizer)."""
    folder = save_random_model(task_tokenizer_dir, tmp_path / "hf")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(tiny_tokenizer / name, folder / name)
    message = generate_error(capsys, "--model", folder, "--prompt", "import json\n\ndef loads(s):")
    assert "512" in message and "320" in message and "tokenizer" in message


def test_a_model_folder_without_config_json_says_so(tmp_path, capsys, plain_folder, tiny_tokenizer) -> None:
    """Issue 29 item 7: it was called "a training checkpoint" (then asked for --config_path); with them
    given, "no *.ckpt in ..."."""
    folder = shutil.copytree(plain_folder, tmp_path / "hf")
    (folder / "config.json").unlink()
    for extra in ([], ["--config_path", str(GPT2_TINY), "--tokenizer_path", str(tiny_tokenizer)]):
        message = generate_error(capsys, "--model", folder, "--prompt", "x", *extra)
        assert f"--model {folder} is a folder without config.json" in message, message
        assert "training checkpoint" not in message and "re-export" in message
    empty = tmp_path / "empty"
    empty.mkdir()
    message = generate_error(capsys, "--model", empty, "--prompt", "x")
    assert f"--model {empty} is a folder without config.json and without *.ckpt" in message, message


def test_a_text_file_as_the_checkpoint_says_it_is_not_one(tmp_path, capsys, tiny_tokenizer) -> None:
    """Issue 29 item 7: "(101)" was all the message said of why."""
    text = tmp_path / "notes.ckpt"
    text.write_text("hello, not a checkpoint\n" * 10)
    message = generate_error(
        capsys,
        "--model",
        text,
        "--prompt",
        "x",
        "--config_path",
        GPT2_TINY,
        "--tokenizer_path",
        tiny_tokenizer,
    )
    assert f"checkpoint {text} is not a torch checkpoint" in message and "(101)" not in message, message


def test_truncated_weights_are_a_one_line_error(tmp_path, capsys, plain_folder) -> None:
    folder = shutil.copytree(plain_folder, tmp_path / "hf")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:5000])
    message = generate_error(capsys, "--model", folder, "--prompt", "x")
    assert str(folder) in message and "model.safetensors" in message


def test_streams_what_it_returns_and_is_reproducible(plain_folder) -> None:
    from gitnetic.inference.generate import DecodingParams, GenerateParams, generate

    for flags in ({"greedy": True}, {"temperature": 1.0, "top_k": 0, "top_p": 0.9, "seed": 3}):
        params = GenerateParams(model=str(plain_folder), prompt=["def f(x):", ""])
        decoding = DecodingParams(max_new_tokens=12, **flags)
        stream = io.StringIO()
        first = generate(params, decoding, out=stream)
        assert stream.getvalue() == "".join(r.text + "\n" for r in first)
        assert all(0 <= r.new_tokens <= 12 for r in first)
        assert [r.text for r in generate(params, decoding)] == [r.text for r in first]
    # literal special-token strings in a prompt are text, as in training data
    from gitnetic.inference.generate import Generator, load_generation_model

    generator = Generator(*load_generation_model(str(plain_folder)), device="cpu")
    assert 2 not in generator.prompt_ids("x = '</s>'")
    assert generator.prompt_ids("") == [2]  # an empty prompt starts after </s>, like every document
    with pytest.raises(ConfigError):
        DecodingParams(top_p=0.0)
    with pytest.raises(DataError):
        load_generation_model(str(plain_folder / "nope"))


@pytest.fixture(scope="module")
def fim_shards(tmp_path_factory, tiny_corpus_jsonl, fim_tokenizer) -> Path:
    return preprocess_shards(
        fim_tokenizer, tiny_corpus_jsonl, tmp_path_factory.mktemp("fim_bin"), "--workers", "1"
    )


def test_fim_training_then_generate_from_checkpoint_equals_export_and_infills(
    tmp_path, capsys, fim_tokenizer, fim_shards
) -> None:
    save_dir = tmp_path / "checkpoints"
    train = run_gitnetic(
        "train", "--task", "transformer-task", "--config_path", GPT2_TINY, "--tokenizer_path", fim_tokenizer,
        "--train_data_prefix", fim_shards / "train", "--fim_rate", "0.5", "--fim_spm_rate", "0.5",
        "--packing", "true", "--max_length", "64", "--batch_size", "8", "--max_steps", "30",
        "--warmup_steps", "3", "--learning_rate", "3e-3", "--save_dir", save_dir, "--gpus", "0",
        "--save_step_frequency", "30", "--progress_bar_refresh_rate", "0", "--log_every_n_steps", "5",
        cwd=tmp_path,
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    ckpt_args = ["--model", save_dir, "--config_path", GPT2_TINY, "--tokenizer_path", fim_tokenizer]
    hf = tmp_path / "hf"
    assert cli_main.main(["export", "--checkpoint", str(save_dir), "--config_path", str(GPT2_TINY),
                          "--tokenizer_path", str(fim_tokenizer), "--output_dir", str(hf)]) == 0  # fmt: skip
    assert json.loads((hf / "gitnetic_export.json").read_text())["global_step"] == 30

    prompt = ["--prompt", "import json\n\n\ndef ", "--greedy", "--max_new_tokens", "24"]
    rc_ckpt, from_ckpt, err_ckpt = run_cli(capsys, *ckpt_args, *prompt)
    rc_export, from_export, err_export = run_cli(capsys, "--model", hf, *prompt)
    assert rc_ckpt == 0 and rc_export == 0, err_ckpt + err_export
    assert from_ckpt == from_export and len(from_ckpt) > 1

    # infill: a file with a cursor marker, and --prefix/--suffix, give the same middle
    source = tmp_path / "edit.py"
    source.write_text("def load(path):\n    with open(path) as fh:\n        <CURSOR>\n    return data\n")
    infill = ["--greedy", "--max_new_tokens", "16"]
    rc_file, by_file, err = run_cli(capsys, "--model", hf, "--infill_file", source, *infill)
    prefix, suffix = source.read_text().split("<CURSOR>")
    rc_flags, by_flags, _ = run_cli(capsys, "--model", hf, "--prefix", prefix, "--suffix", suffix, *infill)
    assert rc_file == 0 and rc_flags == 0, err
    assert by_file == by_flags
    assert "<fim_" not in by_file and "</s>" not in by_file

    # evaluate scores the same FIM model's infilling too (gitnetic/evaluation/completion.py), and a seed
    # picks the same lines every time
    def scores(seed: int) -> dict:
        out = tmp_path / f"eval-{seed}.json"
        assert cli_main.main([
            "evaluate", "--checkpoint", str(save_dir), "--config_path", str(GPT2_TINY),
            "--tokenizer_path", str(fim_tokenizer), "--data_prefix", str(fim_shards / "test"),
            "--max_length", "64", "--completion_samples", "8", "--completion_seed", str(seed),
            "--output", str(out),
        ]) == 0  # fmt: skip
        return json.loads(out.read_text())

    metrics = scores(0)
    assert metrics["next_line_samples"] == metrics["infill_samples"] == 8
    assert 0 <= metrics["next_line_exact_match"] <= 1 and 0 <= metrics["infill_exact_match"] <= 1
    assert scores(0) == metrics
