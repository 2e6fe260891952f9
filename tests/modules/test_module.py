"""TransformerModule: params, weight-decay groups, MLM masking, and real short trainings that learn."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gitnetic.common.dataclass_argparse import DataclassArgumentParser
from gitnetic.common.errors import ConfigError
from gitnetic.modules.objective import mask_tokens
from gitnetic.modules.transformer_module import TransformerModule, split_weight_decay_params
from tests.helpers import encode_files, module_and_data, stdlib_json_files, write_shard
from tests.helpers import tiny_gpt2 as gpt2
from tests.helpers import tiny_roberta as roberta

Params = TransformerModule.Params


def write_shards(tokenizer, out: Path) -> tuple[str, str]:
    """Real MMIDIDX train/valid shards of the stdlib ``json`` package (one document per file)."""
    docs = encode_files(tokenizer, stdlib_json_files())
    return write_shard(out / "train", docs[1:]), write_shard(out / "valid", docs[:1])


# ---------------------------------------------------------------------------- params


def test_params_parse_from_flags_and_validate() -> None:
    parser = DataclassArgumentParser()
    TransformerModule.add_argparse_params(parser)
    params, _ = parser.parse_args_into_dataclasses(
        ["--learning_rate", "1e-3", "--betas", "0.9", "0.95", "--objective", "mlm", "--warmup_steps", "7"]
    )
    assert isinstance(params, Params)
    assert (params.learning_rate, params.betas, params.objective, params.warmup_steps) == (
        1e-3,
        [0.9, 0.95],
        "mlm",
        7,
    )
    assert (params.learning_rate_end, params.weight_decay, params.eps, params.mlm_probability) == (
        0.0,
        0.01,
        1e-6,
        0.15,
    )
    for bad in (
        {"learning_rate": 0.0},
        {"betas": [0.9]},
        {"mlm_probability": 1.5},
        {"learning_rate_end": 1.0},
    ):
        with pytest.raises(ConfigError) as info:
            Params(**bad)
        assert "\n" not in str(info.value)


def test_objective_auto_follows_the_model_class(tokenizer) -> None:
    assert TransformerModule(model=gpt2(tokenizer), tokenizer=tokenizer, params=Params()).objective == "clm"
    assert (
        TransformerModule(model=roberta(tokenizer), tokenizer=tokenizer, params=Params()).objective == "mlm"
    )
    forced = TransformerModule(model=roberta(tokenizer), tokenizer=tokenizer, params=Params(objective="clm"))
    assert forced.objective == "clm"


def test_weight_decay_skips_biases_and_norm_weights(tokenizer) -> None:
    model = roberta(tokenizer)
    groups = split_weight_decay_params(model, 0.05)
    by_id = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    names = dict(model.named_parameters())
    assert len(by_id) == len(names)  # every trainable parameter exactly once
    for name, param in names.items():
        if name.endswith("bias") or "LayerNorm" in name:
            assert by_id[id(param)] == 0.0, name
        elif name.endswith(("query.weight", "dense.weight", "word_embeddings.weight")):
            assert by_id[id(param)] == 0.05, name
    assert any(n.endswith("LayerNorm.weight") for n in names) and any(n.endswith(".bias") for n in names)


# ---------------------------------------------------------------------------- masking


def _masked(tokenizer, seed: int, probability: float = 0.15):
    ids = torch.randint(5, len(tokenizer), (64, 48), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = tokenizer.bos_token_id
    lengths = torch.randint(10, 48, (64,), generator=torch.Generator().manual_seed(1))
    attention = (torch.arange(48)[None, :] < lengths[:, None]).long()
    ids[torch.arange(64), lengths - 1] = tokenizer.eos_token_id
    ids = ids.masked_fill(attention == 0, tokenizer.pad_token_id)
    inputs, labels = mask_tokens(
        ids,
        attention,
        special_ids=torch.tensor(tokenizer.all_special_ids),
        mask_token_id=tokenizer.mask_token_id,
        vocab_size=len(tokenizer),
        mlm_probability=probability,
        generator=torch.Generator().manual_seed(seed),
    )
    return ids, attention, inputs, labels


def test_mlm_masking_never_touches_padding_or_special_tokens(tokenizer) -> None:
    ids, attention, inputs, labels = _masked(tokenizer, seed=3)
    special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids)) | (attention == 0)
    targets = labels != -100
    assert not (targets & special).any()
    assert torch.equal(inputs[special], ids[special])
    assert torch.equal(labels[targets], ids[targets])  # labels are the original tokens
    assert torch.equal(inputs[~targets], ids[~targets])  # only targets are changed
    maskable = (~special).sum().item()
    rate = targets.sum().item() / maskable
    assert 0.12 < rate < 0.18, rate
    replaced = inputs[targets]
    share_mask = (replaced == tokenizer.mask_token_id).float().mean().item()
    share_kept = (replaced == ids[targets]).float().mean().item()
    assert 0.72 < share_mask < 0.88 and 0.05 < share_kept < 0.16, (share_mask, share_kept)


def test_mlm_masking_is_a_function_of_the_generator_seed(tokenizer) -> None:
    _, _, inputs_a, labels_a = _masked(tokenizer, seed=11)
    _, _, inputs_b, labels_b = _masked(tokenizer, seed=11)
    _, _, inputs_c, labels_c = _masked(tokenizer, seed=12)
    assert torch.equal(inputs_a, inputs_b) and torch.equal(labels_a, labels_b)
    assert not torch.equal(labels_a, labels_c)


def test_clm_labels_ignore_padding_and_loss_is_token_weighted(tokenizer) -> None:
    module = TransformerModule(model=gpt2(tokenizer), tokenizer=tokenizer, params=Params())
    ids = torch.tensor([[0, 40, 41, 42, 2], [0, 43, 2, 1, 1]])
    attention = (ids != 1).long()
    _, _, labels = module.prepare_batch({"input_ids": ids, "attention_mask": attention}, None)
    assert labels.tolist() == [[0, 40, 41, 42, 2], [0, 43, 2, -100, -100]]
    module.eval()
    with torch.no_grad():
        loss_sum, count = module.loss_sum_and_count({"input_ids": ids, "attention_mask": attention}, None)
        hf = module.model(input_ids=ids, attention_mask=attention, labels=labels).loss
    assert count.item() == 4 + 2  # shifted targets: no prediction for the first token
    assert (loss_sum / count).item() == pytest.approx(hf.item(), rel=1e-5)


def test_clm_loss_and_gradients_are_bit_identical_to_slicing_the_logits(tokenizer) -> None:
    """Shifting labels (no logits copy) must not change a single bit of the loss or the gradients."""
    torch.manual_seed(3)
    module = TransformerModule(model=gpt2(tokenizer), tokenizer=tokenizer, params=Params())
    module.eval()  # no dropout: both forwards must see the same network (gradients still flow)
    ids = torch.randint(5, len(tokenizer), (3, 12))
    attention = torch.ones_like(ids)
    attention[2, 9:] = 0
    ids[2, 9:] = 1
    batch = {"input_ids": ids, "attention_mask": attention}
    loss_sum, count = module.loss_sum_and_count(batch, None)
    loss_sum.backward()
    ours = [p.grad.clone() for p in module.parameters()]
    module.zero_grad(set_to_none=True)
    logits = module.model(input_ids=ids, attention_mask=attention).logits[:, :-1]
    labels = ids.masked_fill(attention == 0, -100)[:, 1:]
    reference = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=-100, reduction="sum"
    )
    reference.backward()
    assert torch.equal(loss_sum, reference)
    assert count.item() == (labels != -100).sum().item()
    assert all(torch.equal(a, p.grad) for a, p in zip(ours, module.parameters(), strict=True))


# ---------------------------------------------------------------------------- real training


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_short_training_lowers_the_loss_and_writes_dvclive_metrics(
    tokenizer, tmp_path: Path, objective: str
) -> None:
    from gitnetic.training.trainer import TransformerTrainer

    train, valid = write_shards(tokenizer, tmp_path)
    trainer = TransformerTrainer(
        TransformerTrainer.Params(
            max_steps=40,
            val_check_interval=20,
            save_dir="",
            log_every_n_steps=5,
            progress_bar_refresh_rate=0,
            dvclive_dir=str(tmp_path / "dvclive"),
        ),
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    model = gpt2(tokenizer) if objective == "clm" else roberta(tokenizer)
    module, dm = module_and_data(
        tokenizer, model, train, valid, module={"learning_rate": 3e-3, "warmup_steps": 4},
        batch_size=8, max_length=64, packing=objective == "clm",
    )  # fmt: skip
    trainer.fit(module, dm)

    metrics = json.loads((tmp_path / "dvclive" / "metrics.json").read_text())
    # bits per byte for a causal LM only (tests/modules/test_val_bits_per_byte.py checks its value)
    val_keys = {"loss", "perplexity"} | ({"bits_per_byte"} if objective == "clm" else set())
    assert set(metrics["train"]) == {"loss", "lr", "tokens"} and set(metrics["val"]) == val_keys
    assert metrics["val"]["perplexity"] == pytest.approx(np.exp(metrics["val"]["loss"]), rel=1e-4)
    plots = tmp_path / "dvclive" / "plots" / "metrics"
    losses = [
        float(line.split("\t")[-1]) for line in (plots / "train" / "loss.tsv").read_text().splitlines()[1:]
    ]
    val_losses = [
        float(line.split("\t")[-1]) for line in (plots / "val" / "loss.tsv").read_text().splitlines()[1:]
    ]
    assert len(losses) == 8 and len(val_losses) == 2
    assert losses[-1] < losses[0] - 0.5, losses  # starts near ln(512) = 6.2
    assert val_losses[1] < val_losses[0], val_losses
    # tokens seen = non-padding tokens of the 40 batches; kept on the module for checkpoints
    assert metrics["train"]["tokens"] == module.tokens_seen > 40 * 8 * 8
    if objective == "clm":  # packed: full 64-token blocks except the last block of each epoch
        assert 0.9 * 40 * 8 * 64 < module.tokens_seen <= 40 * 8 * 64


@pytest.mark.parametrize(("warmup_steps", "warns"), [(1000, True), (None, False), (3, False)])
def test_configure_optimizers_warns_when_warmup_takes_most_of_the_run(
    tokenizer, caplog: pytest.LogCaptureFixture, warmup_steps, warns: bool
) -> None:
    from lightning.pytorch import Trainer

    Params = TransformerModule.Params
    module = TransformerModule(gpt2(tokenizer), tokenizer, params=Params(warmup_steps=warmup_steps))
    module.trainer = Trainer(
        max_steps=30, logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    with caplog.at_level("WARNING", logger="gitnetic.modules.transformer_module"):
        scheduler = module.configure_optimizers()["lr_scheduler"]["scheduler"]
    lines = [r.getMessage() for r in caplog.records if "warmup_steps" in r.getMessage()]
    assert len(lines) == (1 if warns else 0), lines
    if warns:
        assert "--warmup_steps 1000 >= --max_steps 30" in lines[0]
    lrs = [scheduler.lr_lambdas[0](step) for step in range(31)]  # as a fraction of --learning_rate
    if warns:
        assert max(lrs) < 0.05  # 30 of 1000 warmup steps: never near the peak
    else:
        assert lrs[3] == 1.0  # unset warmup: 3 steps (10% of 30), the peak at step 3
