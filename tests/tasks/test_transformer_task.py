"""The built-in ``transformer-task``: registration, params wiring, model/tokenizer agreement."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitnetic import TaskModule, TransformerDataModule, TransformerModule
from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError, TaskError
from gitnetic.tasks.transformer_task import TransformerTask

CONFIGS = Path(__file__).resolve().parents[2] / "gitnetic" / "configs"


def parse(argv: list[str]) -> tuple:
    parser = DataclassArgumentParser(prog="t")
    TransformerTask.add_argparse_params(parser)
    return parser.parse_args_into_dataclasses(argv)


def test_registered_under_its_name_and_exported():
    import gitnetic

    assert TaskModule.by_name("transformer-task") is TransformerTask is gitnetic.TransformerTask
    assert "transformer-task" in TaskModule.list_tasks()
    assert TransformerTask.params_type is TransformerTask.Params


@pytest.mark.parametrize(("config", "objective"), [("roberta-tiny", "mlm"), ("llama-tiny", "clm")])
def test_setup_builds_components_that_agree(config, objective, task_tokenizer_dir):
    params = parse(
        ["--config_path", str(CONFIGS / f"{config}.yaml"), "--tokenizer_path", str(task_tokenizer_dir),
         "--batch_size", "2", "--max_length", "128", "--learning_rate", "1e-3"]
    )  # fmt: skip
    task = TransformerTask.setup(params)
    assert isinstance(task.module, TransformerModule) and isinstance(task.datamodule, TransformerDataModule)
    assert task.module.objective == objective
    assert task.module.params.learning_rate == 1e-3 and task.datamodule.params.max_length == 128
    model = task.module.model
    assert model.config.vocab_size == len(task.tokenizer) == 320
    assert model.config.pad_token_id == task.tokenizer.pad_token_id == task.datamodule.pad_token_id


def test_missing_required_params_and_missing_components():
    # --config_path/--tokenizer_path are required unless --init_from names a saved model
    with pytest.raises(TaskError, match="--config_path and --tokenizer_path .* or --init_from"):
        TransformerTask.setup(parse(["--batch_size", "2"]))
    with pytest.raises(TaskError, match="TransformerModule"):
        TransformerTask.get_params((TransformerTask.Params(config_path="c", tokenizer_path="t"),))


def test_roberta_max_length_is_checked_against_positions(task_tokenizer_dir):
    params = parse(
        ["--config_path", str(CONFIGS / "roberta-tiny.yaml"), "--tokenizer_path", str(task_tokenizer_dir),
         "--batch_size", "2", "--max_length", "513"]
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"max_position_embeddings=514 is too small for max_length=513"):
        TransformerTask.setup(params)


def test_objective_from_yaml_fills_auto_and_contradiction_is_an_error(tmp_path, task_tokenizer_dir):
    config = tmp_path / "short.yaml"
    config.write_text("model_type: gpt2\nobjective: clm\nn_layer: 1\nn_embd: 32\nn_head: 2\n")
    base = ["--config_path", str(config), "--tokenizer_path", str(task_tokenizer_dir), "--batch_size", "2"]
    task = TransformerTask.setup(parse(base))
    assert task.module.objective == "clm"
    with pytest.raises(TaskError, match="contradicts"):
        TransformerTask.setup(parse([*base, "--objective", "mlm"]))


def test_missing_tokenizer_is_a_data_error(tmp_path):
    from gitnetic.common.errors import DataError

    params = parse(["--config_path", str(CONFIGS / "gpt2-tiny.yaml"), "--tokenizer_path", str(tmp_path / "none"),
                    "--batch_size", "2"])  # fmt: skip
    with pytest.raises(DataError, match="no tokenizer"):
        TransformerTask.setup(params)
