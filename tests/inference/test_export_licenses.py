"""``export`` writes the corpus sources' licenses (stats.json -> licenses) into the exported folder."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from tests.helpers import GPT2_TINY


def test_export_writes_corpus_licenses(tmp_path: Path, tiny_tokenizer: Path, caplog) -> None:
    from gitnetic.inference.export import LICENSES_JSON, ExportParams, export
    from gitnetic.models.build import build_model_and_tokenizer

    model = build_model_and_tokenizer(str(GPT2_TINY), str(tiny_tokenizer)).model
    ckpt = tmp_path / "m.ckpt"
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in model.state_dict().items()}, "global_step": 1}, ckpt
    )
    licenses = {"code": "MIT", "vendored": "Apache-2.0 AND MIT", "notes": None}
    stats = tmp_path / "stats.json"
    stats.write_text(json.dumps({"documents": {"total": 3}, "licenses": licenses}))
    params = dict(checkpoint=str(ckpt), config_path=str(GPT2_TINY), tokenizer_path=str(tiny_tokenizer))
    export(ExportParams(**params, output_dir=str(tmp_path / "hf"), corpus_stats=str(stats)))
    assert json.loads((tmp_path / "hf" / LICENSES_JSON).read_text()) == licenses

    # no stats.json (e.g. a model trained on shards made elsewhere): an empty mapping, said in the log
    with caplog.at_level(logging.INFO, logger="gitnetic.inference.export"):
        missing = tmp_path / "nowhere" / "stats.json"
        export(ExportParams(**params, output_dir=str(tmp_path / "hf2"), corpus_stats=str(missing)))
    assert json.loads((tmp_path / "hf2" / LICENSES_JSON).read_text()) == {}
    assert [r.message for r in caplog.records if str(missing) in r.message]
