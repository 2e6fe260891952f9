"""Validation's ``val/bits_per_byte`` (gitnetic/modules/transformer_module.py) against a computation of
its own from the model's logits and the decoded text, in DVCLive and the pipeline summary, and training
bit-identical with it or without it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from gitnetic.modules.transformer_module import TransformerModule
from tests.helpers import encode_files, module_and_data, stdlib_json_files, write_shard
from tests.helpers import tiny_gpt2 as gpt2

VALID_TEXTS = [  # short (every one fits a 64-token row whole), ASCII first, multi-byte characters inside
    'x = "naïve café"\n',
    "def größe(n):\n    return n * 2  # ≥ 0\n",
    "s = '😀 → ok'\nprint(s)\n",
    "y = 1\n",
    "# ünïcödé line, then code\nz = [1, 2, 3]\n",
]


def shards(tokenizer, out: Path) -> tuple[str, str]:
    """Real train shard (the stdlib ``json`` package) and a validation shard of ``VALID_TEXTS``, each
    document ending in ``</s>`` as preprocess writes them."""
    eos = tokenizer.eos_token_id
    train = [ids + [eos] for ids in encode_files(tokenizer, stdlib_json_files())]
    valid = [tokenizer(text)["input_ids"] + [eos] for text in VALID_TEXTS]
    assert max(len(ids) for ids in valid) <= 64
    return write_shard(out / "train", train), write_shard(out / "valid", valid)


def fit(tokenizer, tmp_path: Path, module_cls=TransformerModule, **data):
    from gitnetic.training.trainer import TransformerTrainer

    train, valid = shards(tokenizer, tmp_path)
    trainer = TransformerTrainer(
        TransformerTrainer.Params(
            max_steps=6,
            val_check_interval=3,
            save_dir="",
            log_every_n_steps=1,
            progress_bar_refresh_rate=0,
            dvclive_dir=str(tmp_path / "dvclive"),
        ),
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    module, dm = module_and_data(
        tokenizer, gpt2(tokenizer), train, valid, module={"learning_rate": 3e-3, "warmup_steps": 1},
        batch_size=2, max_length=64, **data,
    )  # fmt: skip
    if module_cls is not TransformerModule:
        module = module_cls(module.model, tokenizer, module.params)
    trainer.fit(module, dm)
    return module, dm, json.loads((tmp_path / "dvclive" / "metrics.json").read_text())


def tsv(path: Path) -> list[float]:
    return [float(line.split("\t")[-1]) for line in path.read_text().splitlines()[1:]]


def test_val_bits_per_byte_is_the_validation_loss_over_the_bytes_of_the_text_scored(tokenizer, tmp_path):
    module, dm, metrics = fit(tokenizer, tmp_path, packing=False)

    # independently: the final model's logits on the very validation batches, a plain cross entropy in
    # float64 over each row's predicted tokens, and the UTF-8 bytes of those tokens decoded as text
    nll, nbytes, rows = 0.0, 0, 0
    model = module.model.eval()
    with torch.no_grad():
        for batch in dm.val_dataloader():
            ids, mask = batch["input_ids"], batch["attention_mask"]
            logits = model(input_ids=ids, attention_mask=mask).logits.double()
            for r in range(len(ids)):
                n = int(mask[r].sum())
                assert mask[r, :n].all()  # padded on the right
                nll += float(F.cross_entropy(logits[r, : n - 1], ids[r, 1:n], reduction="sum"))
                text = tokenizer.decode(ids[r, 1:n].tolist(), skip_special_tokens=True)
                assert "\ufffd" not in text  # whole characters: the byte count is the text's
                nbytes += len(text.encode("utf-8"))
                rows += 1
    assert rows == len(VALID_TEXTS)
    # the multi-byte characters are in what was counted: more bytes than characters
    assert nbytes > sum(len(t) - 1 for t in VALID_TEXTS)

    val = metrics["val"]
    assert set(val) == {"loss", "perplexity", "bits_per_byte"}
    assert val["bits_per_byte"] == pytest.approx(nll / (math.log(2) * nbytes), rel=1e-5)
    # the same summed loss over tokens instead of bytes is val/loss: both are ratios of epoch sums
    tokens = sum(len(tokenizer(t)["input_ids"]) for t in VALID_TEXTS)  # + </s> - the unscored first
    assert val["loss"] == pytest.approx(nll / tokens, rel=1e-5)
    # a curve in DVCLive's plots, one point per validation, the last one what metrics.json holds
    history = tsv(tmp_path / "dvclive" / "plots" / "metrics" / "val" / "bits_per_byte.tsv")
    assert len(history) == 2 and history[-1] == pytest.approx(val["bits_per_byte"])
    assert history[1] < history[0]  # it learned

    from gitnetic.pipeline.params import SummaryParams
    from gitnetic.pipeline.summary import pipeline_summary

    params = tmp_path / "params.yaml"
    params.write_text("train:\n  dvclive_dir: dvclive\n")
    lines = "\n".join(pipeline_summary(SummaryParams(params_file=str(params))))
    assert f"val loss {val['loss']:.3f} ({val['bits_per_byte']:.3f} bits per byte)" in lines, lines


class _NoBitsPerByte(TransformerModule):
    """The module as it was before validation counted bytes."""

    def token_bytes(self):
        return None


def test_training_is_bit_identical_with_or_without_bits_per_byte(tokenizer, tmp_path):
    on, _, on_metrics = fit(tokenizer, tmp_path / "on", packing=True)
    off, _, off_metrics = fit(tokenizer, tmp_path / "off", _NoBitsPerByte, packing=True)
    assert "bits_per_byte" in on_metrics["val"] and "bits_per_byte" not in off_metrics["val"]
    weights_on, weights_off = on.model.state_dict(), off.model.state_dict()
    assert weights_on.keys() == weights_off.keys()
    assert all(torch.equal(weights_on[k], weights_off[k]) for k in weights_on)
    for name in ("train/loss.tsv", "val/loss.tsv"):
        curves = [tsv(tmp_path / run / "dvclive" / "plots" / "metrics" / name) for run in ("on", "off")]
        assert curves[0] == curves[1] and curves[0], name
