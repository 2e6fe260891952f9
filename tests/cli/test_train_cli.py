"""``python -m gitnetic train``: the seed's example command end to end, custom tasks, help and errors.

The seed-command tests run real subprocesses with real Lightning training on a tiny model, because
what users type is a shell command: flag parsing, task registration, ``--include-package`` from the
current directory and one-line errors all have to work there, not only in-process.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest
import torch

from gitnetic.cli import main as cli_main
from tests.helpers import CONFIGS, assert_trained, run_gitnetic, train_seed_command

# The "Example of a new task" code block of seed-train.rst, verbatim (placeholders included).
SEED_EXAMPLE = """\
from argparse import Namespace
from dataclasses import dataclass, field
from typing import Tuple, Type, Union

from gitnetic import TaskModule, TransformerDataModule, TransformerModule
from gitnetic.common.dataclass_argparse import (
    DataclassArgumentParser,
    DataclassBase, 
    get_params_item
)

ParamType = Union[DataclassBase, Namespace]


@TaskModule.register("my-custom-task")
class MyCustomTask(TaskModule[TransformerModule, TransformerDataModule]):
    @dataclass
    class Params(DataclassBase):
        ### Your fields here

    params: Params
    params_type: Type[Params] = Params

    ComponentParams = Tuple[
        params_type,
        TransformerModule.params_type,
        TransformerDataModule.params_type,
    ]

    @classmethod
    def get_params(cls, params: Tuple[ParamType, ...]) -> "ComponentParams":
        # get the params for task components
        task_params = get_params_item(
            params=params,
            params_type=cls.params_type,
        )
        module_params = get_params_item(
            params=params,
            params_type=TransformerModule.params_type,
        )
        datamodule_params = get_params_item(
            params=params,
            params_type=TransformerDataModule.params_type,
        )

        # make sure the params exist
        assert isinstance(task_params, cls.params_type)
        assert isinstance(module_params, TransformerModule.params_type)
        assert isinstance(datamodule_params, TransformerDataModule.params_type)

        return task_params, module_params, datamodule_params

    @classmethod
    def setup(
        cls: Type["MyCustomTask"], params: Tuple[ParamType, ...]
    ) -> "MyCustomTask":
        # get the params for task components
        task_params, module_params, datamodule_params = cls.get_params(params)
        tokenizer = ### Create a tokenizer instance
        model = ### Prepare the model to train

        # prepare a transformer module
        module = TransformerModule(
            model=model, tokenizer=tokenizer, params=module_params
        )

        # prepare a transformer datamodule
        datamodule = TransformerDataModule(
            tokenizer=tokenizer, params=datamodule_params
        )

        return cls(tokenizer, module, datamodule)

    @classmethod
    def add_argparse_params(
        cls: Type["MyCustomTask"], parser: DataclassArgumentParser
    ) -> None:
        parser.add_arguments(cls.Params)
        TransformerModule.add_argparse_params(parser)
        TransformerDataModule.add_argparse_params(parser)
"""

SEED_DOCS = [
    Path(__file__).resolve().parents[3] / "shared" / "seed-train.rst",  # the shared/ beside the checkout
    Path(__file__).resolve().parents[2] / "docs" / "seed-train.rst",  # the copy shipped in docs/
]

# What a user adds around the pasted block: their own imports, and the three placeholder lines.
USER_IMPORTS = "from transformers import GPT2Config, GPT2LMHeadModel\n\nfrom gitnetic.data.tokenizer import load_tokenizer\n\n"
PLACEHOLDERS = {
    "        ### Your fields here\n": (
        '        tokenizer_dir: str = field(default="", metadata={"help": "Tokenizer folder of my-custom-task."})\n'
        '        hidden_size: int = field(default=32, metadata={"help": "Model width of my-custom-task."})\n'
    ),
    "tokenizer = ### Create a tokenizer instance": "tokenizer = load_tokenizer(task_params.tokenizer_dir)",
    "model = ### Prepare the model to train": (
        "model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=task_params.hidden_size, "
        "n_layer=1, n_head=2, n_positions=512, bos_token_id=tokenizer.bos_token_id, "
        "eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))"
    ),
}


def seed_example_filled(task_name: str = "my-custom-task") -> str:
    code = SEED_EXAMPLE
    for placeholder, replacement in PLACEHOLDERS.items():
        assert placeholder in code
        code = code.replace(placeholder, replacement)
    assert "###" not in code
    return USER_IMPORTS + code.replace('"my-custom-task"', f"{task_name!r}")


def extract_code_block(rst: str) -> str:
    match = re.search(r"\.\. code-block:: python\n\n(.*)", rst, re.S)
    assert match, "no python code block in the seed docs"
    lines = []
    for line in match.group(1).splitlines():
        if line.strip() and not line.startswith("    "):
            break
        lines.append(line)
    return textwrap.dedent("\n".join(lines)).strip("\n") + "\n"


def test_embedded_example_is_the_documented_one():
    docs = [p for p in SEED_DOCS if p.is_file()]
    if not docs:
        pytest.skip("seed-train.rst not available in this checkout")
    assert extract_code_block(docs[0].read_text(encoding="utf-8")) == SEED_EXAMPLE


def test_seed_command_trains_a_masked_lm(tmp_path, tiny_tokenizer, lm_shards):
    run = train_seed_command(tmp_path / "mlm", CONFIGS / "roberta-tiny.yaml", tiny_tokenizer, lm_shards)
    assert_trained(run)

    # the masked LM's checkpoint evaluates too (in-process: the worker has torch loaded already)
    out = tmp_path / "eval.json"
    argv = [
        "evaluate",
        "--checkpoint",
        str(run["save_dir"]),
        "--config_path",
        str(CONFIGS / "roberta-tiny.yaml"),
    ]
    argv += [
        "--tokenizer_path",
        str(tiny_tokenizer),
        "--data_prefix",
        str(lm_shards / "valid"),
        "--output",
        str(out),
    ]
    assert cli_main.main(argv) == 0
    metrics = json.loads(out.read_text())
    assert metrics["objective"] == "mlm" and metrics["tokens"] > 0
    # 50 MLM steps only learn about unigram statistics, so compare with what must hold: better than
    # uniform over the vocabulary, and the same number the module's own validation logged on this shard
    assert 1 < metrics["perplexity"] < 512
    val_loss = json.loads((run["root"] / "dvclive" / "metrics.json").read_text())["val"]["loss"]
    assert abs(metrics["loss"] - val_loss) < 0.35, (metrics, val_loss)


def test_seed_custom_task_verbatim_via_include_package(tmp_path, tiny_tokenizer, lm_shards):
    (tmp_path / "my_tasks.py").write_text(seed_example_filled(), encoding="utf-8")
    run = run_gitnetic(
        "train", "--include-package", "my_tasks", "--task", "my-custom-task",
        "--tokenizer_dir", tiny_tokenizer, "--hidden_size", "16",
        "--train_data_prefix", lm_shards / "train", "--max_tokens", "256", "--max_length", "128",
        "--max_steps", "3", "--save_dir", "ckpt", "--gpus", "0", "--progress_bar_refresh_rate", "0",
        "--dvclive_dir", "",
        cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-4000:]
    assert (tmp_path / "ckpt" / "checkpoint_step3.ckpt").is_file()


def test_custom_task_registers_in_process_and_builds(
    tmp_path, monkeypatch, tiny_tokenizer, lm_shards, capsys
):
    from gitnetic import TaskModule, TransformerDataModule, TransformerModule
    from gitnetic.cli.train import parse

    (tmp_path / "unit_seed_tasks.py").write_text(seed_example_filled("unit-seed-task"), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    argv = [
        "--include-package",
        "unit_seed_tasks",
        "--task",
        "unit-seed-task",
        "--tokenizer_dir",
        str(tiny_tokenizer),
    ]
    task_cls, params = parse([*argv, "--train_data_prefix", str(lm_shards / "train"), "--batch_size", "2"])
    task = task_cls.setup(params)
    assert isinstance(task, TaskModule) and task_cls is TaskModule.by_name("unit-seed-task")
    assert isinstance(task.module, TransformerModule) and isinstance(task.datamodule, TransformerDataModule)
    assert task.module.model.config.n_embd == 32 and task.tokenizer.mask_token_id == 4

    with pytest.raises(SystemExit) as info:
        cli_main.main(["train", "--include-package", "unit_seed_tasks", "--task", "unit-seed-task", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--tokenizer_dir", "--hidden_size", "--learning_rate", "--train_data_prefix", "--max_steps"):
        assert flag in out
    assert "--config_path" not in out  # transformer-task's params are not the custom task's


def test_params_yaml_section_selects_task_and_flags_win(tmp_path, tiny_tokenizer, lm_shards):
    from gitnetic import TransformerDataModule
    from gitnetic.cli.train import parse
    from gitnetic.tasks.transformer_task import TransformerTask
    from gitnetic.training.trainer import TransformerTrainer

    (tmp_path / "params.yaml").write_text(
        f"train:\n  task: transformer-task\n  config_path: {CONFIGS / 'gpt2-tiny.yaml'}\n"
        f"  tokenizer_path: {tiny_tokenizer}\n  train_data_prefix: {lm_shards / 'train'}\n"
        "  batch_size: 4\n  max_steps: 7\n  seed: 5\n  packing: true\n"
    )
    task_cls, params = parse(["--config", f"{tmp_path / 'params.yaml'}:train", "--max_steps", "9"])
    assert task_cls is TransformerTask
    trainer_params = next(p for p in params if isinstance(p, TransformerTrainer.Params))
    task_params = next(p for p in params if isinstance(p, TransformerTask.Params))
    datamodule_params = next(p for p in params if isinstance(p, TransformerDataModule.Params))
    assert trainer_params.max_steps == 9 and trainer_params.seed == 5 and datamodule_params.seed == 5
    assert datamodule_params.packing is True and task_params.tokenizer_path == str(tiny_tokenizer)


def test_the_config_file_is_read_once(tmp_path, monkeypatch):
    """Phase one (task, plugins) and phase two (every flag) take --config from one parser, which reads
    each file once."""
    import gitnetic.common.dataclass_argparse as dataclass_argparse
    from gitnetic.cli.train import parse

    config = tmp_path / "params.yaml"
    config.write_text("train:\n  task: transformer-task\n  max_steps: 5\n")
    reads = []
    real = dataclass_argparse.load_yaml
    monkeypatch.setattr(
        dataclass_argparse, "load_yaml", lambda path, *a: reads.append(path) or real(path, *a)
    )
    _, params = parse(["--config", f"{config}:train"])
    assert [Path(p) for p in reads] == [config]
    assert next(p for p in params if hasattr(p, "max_steps")).max_steps == 5


@pytest.mark.parametrize("task", ["transformer-task", "unit-collide-task"])
def test_the_train_parser_shares_only_marked_fields(task, tmp_path, monkeypatch):
    """Building the parser refuses an unmarked name two params groups declare; the only shared name of the
    built-in components is the run's seed, and no component field hides a lightning.Trainer argument
    (the pass-through flag would silently not exist)."""
    import dataclasses
    import typing

    import lightning

    from gitnetic.cli.train import build_parser
    from gitnetic.training.trainer import TransformerTrainer

    (tmp_path / "unit_collide_tasks.py").write_text(
        seed_example_filled("unit-collide-task"), encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    __import__("unit_collide_tasks")
    parser, _ = build_parser(task)
    declared: dict[str, list[type]] = {}
    for dtype in parser._dataclass_types:
        for f in dataclasses.fields(dtype):
            declared.setdefault(f.name, []).append(dtype)
    assert {name for name, owners in declared.items() if len(owners) > 1} == {"seed"}
    lightning_args = set(typing.get_type_hints(lightning.Trainer.__init__))
    trainer_fields = {f.name for f in dataclasses.fields(TransformerTrainer.Params)}
    assert not (set(declared) - trainer_fields) & lightning_args


def test_help_lists_every_component(capsys):
    with pytest.raises(SystemExit) as info:
        cli_main.main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "transformer-task" in out and "--include-package" in out
    for flag in ("--config_path", "--tokenizer_path", "--warmup_steps", "--learning_rate", "--power",
                 "--train_data_prefix", "--val_data_prefix", "--max_tokens", "--num_workers", "--gpus",
                 "--max_steps", "--val_check_interval", "--save_step_frequency", "--save_dir",
                 "--progress_bar_refresh_rate", "--log_every_n_steps", "--wandb_project", "--wandb_name"):  # fmt: skip
        assert flag in out, flag
    assert "TransformerTask parameters" in out and "TransformerTrainer parameters" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--task", "no-such-task"], "unknown task 'no-such-task'; registered tasks: "),
        (["train", "--config_path", "x.yaml"], "--task is required"),
        (["train", "--include-package", "unit_no_such_module", "--task", "x"], "no module named"),
    ],
)
def test_user_errors_are_one_line(argv, message, capsys):
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("gitnetic train: error: ") and message in err and err.count("\n") == 1


def test_bad_flag_is_one_line_exit_2_in_a_real_process(tmp_path):
    run = run_gitnetic(
        "train", "--task", "transformer-task", "--config_path", "c.yaml", "--bogus_flag", "1", cwd=tmp_path
    )
    assert run.returncode == 2
    assert "unrecognized arguments: --bogus_flag 1" in run.stderr
    assert "Traceback" not in run.stderr and run.stderr.strip().count("\n") == 0


def test_bad_model_config_is_one_line(tmp_path, tiny_tokenizer, lm_shards, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  name: transformers.NoSuchModel\n  config: transformers.GPT2Config\n")
    argv = [
        "train",
        "--task",
        "transformer-task",
        "--config_path",
        str(bad),
        "--tokenizer_path",
        str(tiny_tokenizer),
    ]
    assert cli_main.main([*argv, "--train_data_prefix", str(lm_shards / "train"), "--batch_size", "2"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "NoSuchModel" in err and err.count("\n") == 1


def test_params_yaml_may_include_the_package_that_defines_the_task(tmp_path, monkeypatch, tiny_tokenizer):
    from gitnetic.cli.train import parse

    (tmp_path / "unit_yaml_tasks.py").write_text(seed_example_filled("unit-yaml-task"), encoding="utf-8")
    (tmp_path / "params.yaml").write_text(
        f"train:\n  task: unit-yaml-task\n  include_package: [unit_yaml_tasks]\n  tokenizer_dir: {tiny_tokenizer}\n"
        "  batch_size: 2\n  hidden_size: 24\n"
    )
    monkeypatch.chdir(tmp_path)
    task_cls, params = parse(["--config", "params.yaml:train"])
    assert task_cls.task_name == "unit-yaml-task"
    assert next(p for p in params if type(p).__qualname__ == "MyCustomTask.Params").hidden_size == 24


def test_same_seed_gives_the_same_weights(tmp_path, tiny_tokenizer, lm_shards):
    """The model is initialised after seeding, so two runs with one --seed end bit-identical."""
    from gitnetic.cli.train import main as train_main

    states = []
    for name in ("a", "b"):
        argv = ["--task", "transformer-task", "--config_path", str(CONFIGS / "llama-tiny.yaml")]
        argv += ["--tokenizer_path", str(tiny_tokenizer), "--train_data_prefix", str(lm_shards / "train")]
        argv += ["--batch_size", "2", "--max_length", "64", "--max_steps", "2", "--seed", "3", "--gpus", "0"]
        argv += ["--save_dir", str(tmp_path / name), "--dvclive_dir", "", "--progress_bar_refresh_rate", "0"]
        assert train_main(argv) == 0
        states.append(torch.load(tmp_path / name / "checkpoint_last.ckpt", weights_only=False)["state_dict"])
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key


def test_print_config_prints_the_resolved_params_and_exits_without_training(tmp_path, capsys) -> None:
    import yaml

    from gitnetic.cli.train import main

    config = tmp_path / "params.yaml"
    config.write_text("train:\n  task: transformer-task\n  max_steps: 5\n  learning_rate: 0.01\n")
    argv = ["--config", f"{config}:train", "--config_path", "gpt2-tiny", "--tokenizer_path", str(tmp_path / "tok"),
            "--train_data_prefix", str(tmp_path / "bin"), "--max_steps", "9", "--save_dir", str(tmp_path / "ck"),
            "--print_config"]  # fmt: skip
    assert main(argv) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["task"] == "transformer-task" and printed["config_path"] == "gpt2-tiny"
    assert (
        printed["max_steps"] == 9 and printed["learning_rate"] == 0.01
    )  # flag beats file, file beats default
    assert not (tmp_path / "ck").exists()


def test_shards_of_another_tokenizer_are_one_line_before_training(
    tmp_path, tiny_tokenizer, task_tokenizer_dir, lm_shards
):
    """Issue 29 item 3: shards of a 512-token vocabulary with a 320-token tokenizer (hence model) were a
    149-line ``IndexError`` from inside the first training step; no checkpoint may be written."""
    from tests.helpers import tiny_train_args

    save_dir = tmp_path / "ckpt"
    args = tiny_train_args(task_tokenizer_dir, lm_shards, save_dir, steps=2)
    run = run_gitnetic(*args, cwd=tmp_path)
    assert run.returncode == 2, run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    error = [line for line in run.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and error[0].startswith("gitnetic train: error: "), run.stderr[-3000:]
    assert f"{lm_shards / 'train'} holds token id " in error[0] and "but the model has 320 tokens" in error[0]
    assert f"--tokenizer_path {task_tokenizer_dir}" in error[0]
    assert not list(save_dir.glob("*.ckpt")) if save_dir.exists() else True


def test_a_yaml_list_where_train_wants_a_number_is_one_line(tmp_path, tiny_tokenizer, lm_shards, capsys):
    """Issue 29 item 4: ``TypeError: '<' not supported`` from deep in the trainer's setup."""
    params = tmp_path / "params.yaml"
    params.write_text("train:\n  warmup_steps: [2]\n")
    argv = ["train", "--task", "transformer-task", "--config", f"{params}:train"]
    assert cli_main.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"gitnetic train: error: {params}:train: key 'warmup_steps' must be int, got a list"
    )
    assert err.count("\n") == 1


def test_a_diverged_run_stops_with_one_line_and_saves_no_non_finite_checkpoint(
    tmp_path, tiny_tokenizer, lm_shards
):
    """Issue 29 item 2: ``--learning_rate 1e30`` exited 0 with every weight NaN, so ``dvc repro`` recorded the
    stage as done. Now: a non-zero exit, one line naming the step, and only finite checkpoints on disk; the
    same command again (``auto`` resumes the last good checkpoint) fails the same way, not silently."""
    from tests.helpers import checkpoint_weights, tiny_train_args

    save_dir = tmp_path / "ckpt"
    extra = ("--learning_rate", "1e30", "--save_step_frequency", "1", "--num_last_checkpoints", "-1")
    argv = tiny_train_args(
        tiny_tokenizer, lm_shards, save_dir, *extra, "--resume_from_checkpoint", "auto", steps=6
    )
    lines = []
    for _ in range(2):
        run = run_gitnetic(*argv, cwd=tmp_path)
        assert run.returncode == 2, run.stderr[-3000:]
        assert "Traceback" not in run.stderr
        error = [line for line in run.stderr.splitlines() if "error" in line]
        assert len(error) == 1 and error[0].startswith("gitnetic train: error: "), run.stderr[-3000:]
        lines.append(error[0])
    assert lines[0] == lines[1]
    match = re.search(r"the (loss|gradients) became (nan|inf|non-finite) at step (\d+)", lines[0])
    assert match, lines[0]
    step = int(match.group(3))
    assert 1 <= step < 6 and "--learning_rate" in lines[0]
    saved = sorted(save_dir.glob("*.ckpt"))
    for path in saved:
        weights = checkpoint_weights(path)
        assert all(torch.isfinite(t).all() for t in weights.values() if t.is_floating_point()), path
    steps = sorted(int(p.stem.removeprefix("checkpoint_step")) for p in saved if "step" in p.stem)
    assert all(s < step for s in steps), (steps, step)
    if steps:
        good = save_dir / f"checkpoint_step{steps[-1]}.ckpt"
        assert (save_dir / "checkpoint_last.ckpt").samefile(good)
        assert f"the last good checkpoint is {good}" in lines[0]
