"""gitnetic/models/config.py and build.py: every shipped config parses; tiny ones build for a real tokenizer;
bad input errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.models.build import build_config, build_model, load_model_tokenizer
from gitnetic.models.config import ModelConfig, find_model_config, shipped_model_configs
from gitnetic.modules.objective import config_objective

CONFIGS = Path(__file__).resolve().parents[2] / "gitnetic" / "configs"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_configs_build_their_config(path, task_tokenizer_dir):
    mc = ModelConfig.from_yaml(path)
    tokenizer = load_model_tokenizer(mc, task_tokenizer_dir)
    config = build_config(mc, tokenizer)
    assert config.vocab_size == len(tokenizer) == 320
    assert (config.pad_token_id, config.bos_token_id, config.eos_token_id) == (1, 0, 2)
    assert config_objective(mc) == ("mlm" if "roberta" in path.stem else "clm")


@pytest.mark.parametrize("name", ["gpt2-tiny", "roberta-tiny", "llama-tiny"])
def test_tiny_configs_build_small_models(name, task_tokenizer_dir):
    mc = ModelConfig.from_yaml(CONFIGS / f"{name}.yaml")
    tokenizer = load_model_tokenizer(mc, task_tokenizer_dir)
    model = build_model(mc, tokenizer, max_length=512)
    assert sum(p.numel() for p in model.parameters()) < 500_000
    assert model.get_input_embeddings().num_embeddings == 320


def test_roberta_positions_must_cover_max_length_plus_two(task_tokenizer_dir):
    mc = ModelConfig.from_yaml(CONFIGS / "roberta-tiny.yaml")
    tokenizer = load_model_tokenizer(mc, task_tokenizer_dir)
    build_model(mc, tokenizer, max_length=512)  # 514 positions = 512 + 2: fits
    with pytest.raises(ConfigError, match=r"max_position_embeddings=514 .*>= 515") as info:
        build_model(mc, tokenizer, max_length=513)
    assert "\n" not in str(info.value)


def test_short_form_uses_auto_classes(task_tokenizer_dir):
    clm = ModelConfig.from_dict(
        {"model_type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "n_positions": 64}
    )
    tokenizer = load_model_tokenizer(clm, task_tokenizer_dir)
    model = build_model(clm, tokenizer, max_length=64)
    assert type(model).__name__ == "GPT2LMHeadModel" and model.config.n_layer == 1
    with pytest.raises(ConfigError, match="n_positions=64"):
        build_model(clm, tokenizer, max_length=65)
    mlm = ModelConfig.from_dict(
        {
            "model_type": "roberta",
            "objective": "mlm",
            "config_params": {
                "hidden_size": 32,
                "num_hidden_layers": 1,
                "num_attention_heads": 2,
                "intermediate_size": 64,
            },
        }
    )
    assert type(build_model(mlm, tokenizer)).__name__ == "RobertaForMaskedLM"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("model: [unclosed\n", "not valid YAML at line"),
        ("- a\n- b\n", "must be a mapping"),
        ("tokenizer: {name: x}\n", "neither a 'model:' section"),
        (
            "model: {name: transformers.NoSuchModel, config: transformers.GPT2Config}\n",
            "model.name.*NoSuchModel",
        ),
        (
            "model: {name: no_such_pkg.Model, config: transformers.GPT2Config}\n",
            "cannot import module 'no_such_pkg'",
        ),
        ("model: {name: transformers.GPT2LMHeadModel}\n", "'model.config' is required"),
        ("model: {name: a.B, config: a.C, extra: 1}\n", "unknown model key"),
        ("model_type: gpt2\nobjective: seq2seq\n", "objective must be one of"),
    ],
)
def test_bad_configs_are_one_line_errors_naming_the_file(tmp_path, text, match, task_tokenizer_dir):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=match) as info:
        mc = ModelConfig.from_yaml(path)
        build_model(mc, load_model_tokenizer(mc, task_tokenizer_dir))
    assert "\n" not in str(info.value) and "bad.yaml" in str(info.value)


def test_missing_file_and_bad_config_field(tmp_path, task_tokenizer_dir):
    with pytest.raises(ConfigError, match="does not exist"):
        ModelConfig.from_yaml(tmp_path / "absent.yaml")
    path = tmp_path / "odd.yaml"
    path.write_text(
        "model:\n  name: transformers.GPT2LMHeadModel\n  config: transformers.GPT2Config\n"
        "  config_params: {n_embd: 30, n_head: 4}\n"
    )
    with pytest.raises(ConfigError, match="odd.yaml"):
        mc = ModelConfig.from_yaml(path)
        build_model(mc, load_model_tokenizer(mc, task_tokenizer_dir))


def test_tokenizer_class_from_config_loads_offline(tmp_path, task_tokenizer_dir):
    path = tmp_path / "t.yaml"
    path.write_text(
        "model_type: gpt2\nn_layer: 1\nn_embd: 32\nn_head: 2\n"
        "tokenizer:\n  name: transformers.PreTrainedTokenizerFast\n  params: {add_prefix_space: false}\n"
    )
    tokenizer = load_model_tokenizer(ModelConfig.from_yaml(path), task_tokenizer_dir)
    code = "def f(x):\n\treturn x  # é\r\n"
    assert tokenizer.decode(tokenizer(code)["input_ids"]) == code
    assert tokenizer.mask_token_id == 4


def test_tokenizer_name_may_be_a_gitnetic_loader(tmp_path, task_tokenizer_dir):
    path = tmp_path / "t.yaml"
    path.write_text("model_type: gpt2\ntokenizer:\n  name: gitnetic.data.tokenizer.load.load_tokenizer\n")
    mc = ModelConfig.from_yaml(path)
    tokenizer = load_model_tokenizer(mc, task_tokenizer_dir)
    assert len(tokenizer) == 320 and tokenizer.pad_token_id == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "model_type: gpt2\ntokenizer:\n  name: transformers.PreTrainedTokenizerFast\n  params: {bogus: [}\n"
    )
    with pytest.raises(ConfigError, match="bad.yaml"):
        ModelConfig.from_yaml(bad)


def test_a_bare_name_finds_a_shipped_config_and_paths_still_win(tmp_path, monkeypatch):
    assert {"gpt2-tiny", "roberta-small"} <= set(shipped_model_configs())
    assert find_model_config("gpt2-tiny") == CONFIGS / "gpt2-tiny.yaml"
    (tmp_path / "gpt2-tiny").write_text("model: {model_type: gpt2}\n")
    monkeypatch.chdir(tmp_path)
    assert find_model_config("gpt2-tiny") == Path("gpt2-tiny")  # an existing file is a path, not a name
    with pytest.raises(ConfigError, match="shipped name"):
        find_model_config("no-such-model")
