"""The sizing rule of ``init`` on token counts, and ``init``'s file handling (no training here)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import yaml

from gitnetic.common.errors import ConfigError
from gitnetic.pipeline.init_project import init_project
from gitnetic.pipeline.params import InitParams
from gitnetic.pipeline.plan import LADDER, Budget, bytes_per_token, plan_run, vocab_size_for

REPO = Path(__file__).resolve().parents[2]
CPU_10_MIN = Budget("cpu", 600.0, 28e9)
GPU_HOUR = Budget("gpu", 3600.0, 1e14)
UNLIMITED = Budget("gpu", 1e9, 1e18)


@pytest.mark.parametrize(
    ("corpus_bytes", "vocab"),
    [(1_000, 512), (20_000, 512), (100_000, 1024), (6_000_000, 8192), (500_000_000, 32768), (10**11, 32768)],
)
def test_vocabulary_grows_with_corpus_bytes(corpus_bytes: int, vocab: int) -> None:
    assert vocab_size_for(corpus_bytes) == vocab  # 6 MB of stdlib -> the default pipeline's 8192


def test_bytes_per_token_is_the_default_corpus_measurement_at_8k() -> None:
    assert bytes_per_token(8192) == pytest.approx(3.9)
    assert bytes_per_token(512) < bytes_per_token(8192) < bytes_per_token(32768)


@pytest.mark.parametrize(
    ("tokens", "shape"),
    [
        (10_000, (2, 64)),  # far below any Chinchilla count: the smallest model
        (1_000_000, (2, 64)),  # 3.7M usable tokens: 20 x 98k = 2M fits, 20 x 332k does not
        (100_000_000, (6, 384)),  # 368M usable: 20 x 10.6M = 212M fits, 20 x 25M = 503M does not
        (10_000_000_000, (48, 1600)),  # the top of the ladder
    ],
)
def test_data_limited_model_is_the_largest_with_chinchilla_tokens_available(tokens, shape) -> None:
    plan = plan_run(tokens * 4, UNLIMITED, corpus_tokens=tokens, vocab_size=8192)
    assert (plan.model.n_layer, plan.model.n_embd) == shape
    usable = int(int(tokens * 0.92) * 4)
    assert plan.usable_tokens == usable and plan.limited_by == "data"
    assert plan.tokens_to_train >= usable  # trains on all usable tokens (rounded up to whole steps)
    if shape != (2, 64):
        assert 20 * plan.non_embedding_params <= usable  # Chinchilla: 20 tokens per parameter
        bigger = LADDER[LADDER.index(plan.model) + 1] if plan.model != LADDER[-1] else None
        assert bigger is None or 20 * bigger.non_embedding_params > usable


def test_compute_limited_plan_spends_the_budget_not_more() -> None:
    plan = plan_run(4 * 10**9, GPU_HOUR, corpus_tokens=10**9, vocab_size=32768)
    assert plan.limited_by == "compute"
    unlimited = plan_run(4 * 10**9, UNLIMITED, corpus_tokens=10**9, vocab_size=32768)
    assert plan.model_params < unlimited.model_params  # the budget shrinks the model
    per_token = plan.model.flops_per_token(32768)
    assert plan.tokens_to_train * per_token <= GPU_HOUR.seconds * GPU_HOUR.flops * 1.01
    assert plan.expected_seconds == pytest.approx(plan.flops / GPU_HOUR.flops)
    assert plan.expected_seconds > 0.9 * GPU_HOUR.seconds


@pytest.mark.parametrize("tokens", [500, 8_000, 1_500_000, 100_000_000, 10**10])
@pytest.mark.parametrize("budget", [CPU_10_MIN, GPU_HOUR])
def test_steps_batch_and_warmup_are_consistent(tokens: int, budget: Budget) -> None:
    plan = plan_run(tokens * 4, budget, corpus_tokens=tokens)
    step_tokens = plan.batch_size * plan.max_length * plan.accumulate_grad_batches
    assert plan.tokens_to_train == plan.max_steps * step_tokens
    assert plan.max_steps == math.ceil(min(plan.usable_tokens, plan.tokens_to_train) / step_tokens)
    assert plan.batch_size <= (16 if budget.device == "cpu" else 32)
    assert plan.accumulate_grad_batches == 1 or budget.device == "gpu"
    assert 1 <= plan.warmup_steps and 2 * plan.warmup_steps <= max(plan.max_steps, 2)
    assert plan.max_length == plan.model.context
    if plan.tokens_to_train >= 200 * step_tokens:
        assert plan.max_steps >= 200


def test_bad_budgets_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="budget must be positive"):
        Budget("cpu", 0, 1e9)
    with pytest.raises(ConfigError, match="corpus is empty"):
        plan_run(0, CPU_10_MIN)


# ---------------------------------------------------------------------------------------------- init
@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    shutil.copy2(REPO / "params.yaml", tmp_path / "params.yaml")
    src = tmp_path / "src"
    for i in range(5):
        (src / "pkg").mkdir(parents=True, exist_ok=True)
        (src / "pkg" / f"m{i}.py").write_text(f"def f{i}(x):\n    return x * {i}\n" * 20, encoding="utf-8")
    return tmp_path


def params_for(root: Path, **kw) -> InitParams:
    values = {
        "path": str(root / "src"),
        "output": str(root / "params.yaml"),
        "model_config": str(root / "configs" / "m.yaml"),
    }
    return InitParams(**{**values, **kw})


def test_init_refuses_to_overwrite_without_force(checkout: Path) -> None:
    before = (checkout / "params.yaml").read_bytes()
    with pytest.raises(ConfigError, match=r"params\.yaml already exists; pass --force"):
        init_project(params_for(checkout))
    assert (checkout / "params.yaml").read_bytes() == before
    assert not (checkout / "configs" / "m.yaml").exists()
    result = init_project(params_for(checkout, force=True))
    assert result.written and (checkout / "params.yaml").read_bytes() != before
    (checkout / "params.yaml").write_bytes(before)
    with pytest.raises(ConfigError, match=r"m\.yaml already exists; pass --force"):
        init_project(params_for(checkout, output=str(checkout / "other.yaml")))


def test_init_writes_every_template_section_with_the_plan(checkout: Path) -> None:
    from gitnetic.data.corpus.params import CorpusParams
    from gitnetic.models.config import ModelConfig

    template = yaml.safe_load((checkout / "params.yaml").read_text(encoding="utf-8"))
    result = init_project(params_for(checkout, force=True, budget_minutes=1.0))
    written = yaml.safe_load((checkout / "params.yaml").read_text(encoding="utf-8"))
    assert list(written) == list(template)
    for section in template:  # every key of the template is still there
        assert set(template[section]) <= set(written[section]), section
    assert written["preprocess"] == template["preprocess"]
    (source,) = written["corpus"]["sources"]  # your code replaces the template's stdlib source
    assert source["type"] == "dir" and source["exclude"] == []
    assert source["max_bytes"] == 0
    assert written["tokenizer"]["vocab_size"] == result.plan.vocab_size == 512
    train = written["train"]
    assert (train["max_steps"], train["batch_size"], train["warmup_steps"]) == (
        result.plan.max_steps,
        result.plan.batch_size,
        result.plan.warmup_steps,
    )
    for section in ("train", "evaluate", "export"):
        assert written[section]["config_path"] == str(checkout / "configs" / "m.yaml")
    CorpusParams.from_dict(written["corpus"])
    config = ModelConfig.from_yaml(checkout / "configs" / "m.yaml")
    assert config is not None
    assert (checkout / "params.yaml").read_text(encoding="utf-8").startswith("# gitnetic pipeline parameters")


def test_init_on_the_stdlib_keeps_the_template_corpus(checkout: Path) -> None:
    template = yaml.safe_load((checkout / "params.yaml").read_text(encoding="utf-8"))
    result = init_project(params_for(checkout, path=None, dry_run=True))
    assert result.written == []
    assert result.params["corpus"] == template["corpus"]
    assert result.plan.vocab_size == 8192  # 6 MB of stdlib: the default pipeline's vocabulary
