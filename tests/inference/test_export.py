"""gitnetic/inference/export.py on a checkpoint built here (the trained causal-LM export is tested with
evaluate, in tests/evaluation/test_evaluate_export.py)."""

from __future__ import annotations

import torch


def test_export_masked_lm_short_form_config(tmp_path, tiny_tokenizer):
    """A checkpoint of a short-form (``model_type``) config exports for AutoModelForMaskedLM."""
    from transformers import AutoModelForMaskedLM

    from gitnetic.inference.export import ExportParams, export
    from gitnetic.models.build import build_model_and_tokenizer

    config = tmp_path / "roberta.yaml"
    config.write_text(
        "model_type: roberta\nobjective: mlm\nhidden_size: 32\nnum_hidden_layers: 1\nnum_attention_heads: 2\n"
        "intermediate_size: 64\nmax_position_embeddings: 130\n"
    )
    model = build_model_and_tokenizer(str(config), str(tiny_tokenizer)).model
    ckpt = tmp_path / "m.ckpt"
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 3}, ckpt
    )
    export(ExportParams(checkpoint=str(ckpt), config_path=str(config), tokenizer_path=str(tiny_tokenizer),
                        output_dir=str(tmp_path / "hf")))  # fmt: skip
    loaded = AutoModelForMaskedLM.from_pretrained(tmp_path / "hf", local_files_only=True)
    assert type(loaded).__name__ == "RobertaForMaskedLM"
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
