"""The model card's Hub metadata (gitnetic/inference/model_card.py, hub_license.py): a license the Hub
accepts, bits per byte among the results, a fine-tune's base model beside it."""

from __future__ import annotations

import re

import pytest
import yaml

from gitnetic.inference.hub_license import HUB_LICENSES, hub_license_id
from gitnetic.inference.model_card import model_card

INFO = {"model_class": "GPT2LMHeadModel", "objective": "clm", "global_step": 250, "checkpoint": "ckpt"}
EVAL = {"loss": 1.5, "perplexity": 4.48, "bits_per_byte": 0.61, "tokens": 1000, "unigram_perplexity": 90.0}


def card(licenses=None, evaluation=None) -> tuple[dict, str]:
    text = model_card(INFO, {}, "hf", evaluation, None, {"licenses": licenses} if licenses else None)
    front, body = text.split("---\n", 2)[1:]
    return yaml.safe_load(front), body


@pytest.mark.parametrize(
    ("spdx", "hub"),
    [
        ("MIT", "mit"),
        ("Apache-2.0", "apache-2.0"),
        ("BSD-3-Clause", "bsd-3-clause"),
        ("GPL-2.0-only", "gpl-2.0"),
        ("GPL-3.0-or-later", "gpl-3.0"),
        ("LGPL-2.1-or-later", "lgpl-2.1"),
        ("LGPL-2.0-only", "lgpl"),  # no versioned id: the family's
        ("AGPL-3.0-only", "agpl-3.0"),
        ("GFDL-1.3-only", "gfdl"),
        ("CC0-1.0", "cc0-1.0"),
        ("Unlicense", "unlicense"),
        ("ODbL-1.0", "odbl"),
        ("Zlib", "zlib"),
        ("0BSD", None),
        ("Python-2.0.1", None),
        ("PSF-2.0", None),
    ],
)
def test_spdx_ids_map_to_the_hubs_license_ids(spdx, hub):
    assert hub_license_id(spdx) == hub
    assert hub is None or hub in HUB_LICENSES


def test_the_default_corpus_licenses_are_other_with_a_name_and_the_list_in_the_text():
    """The stdlib corpus is under 0BSD AND Python-2.0.1: the card said ``license: 0bsd and python-2.0.1``,
    which the Hub refuses."""
    meta, body = card({"stdlib": "0BSD AND Python-2.0.1"})
    assert meta["license"] == "other" and meta["license_name"] == "0bsd-and-python-2.0.1"
    assert re.fullmatch(r"[a-z0-9.-]+", meta["license_name"])  # the Hub's spelling of a license name
    assert "stdlib: 0BSD AND Python-2.0.1" in body and "under 0BSD, Python-2.0.1;" in body


@pytest.mark.parametrize(
    ("licenses", "expected"),
    [
        ({"code": "MIT"}, {"license": "mit"}),
        ({"code": "Apache-2.0", "docs": "Apache-2.0"}, {"license": "apache-2.0"}),
        ({"code": "GPL-3.0-only", "more": "GPL-3.0-or-later"}, {"license": "gpl-3.0"}),
        ({"code": "0BSD"}, {"license": "other", "license_name": "0bsd"}),
        (
            {"code": "MIT", "vendored": "Apache-2.0 AND MIT"},
            {"license": "other", "license_name": "apache-2.0-and-mit"},
        ),
        ({"code": "MIT", "notes": None}, {"license": "other", "license_name": "mit-and-unknown"}),
        ({"notes": None}, {"license": "unknown"}),
    ],
)
def test_one_license_is_its_hub_id_several_are_other(licenses, expected):
    meta, body = card(licenses)
    assert {k: v for k, v in meta.items() if k.startswith("license")} == expected
    assert ("license: other" in body) == (expected["license"] == "other")


def test_bits_per_byte_and_the_base_model_are_on_the_card():
    meta, body = card(
        evaluation={**EVAL, "base": {"model": "models/base", "perplexity": 9.0, "bits_per_byte": 0.9}}
    )
    results = {m["name"]: m["value"] for r in meta["model-index"][0]["results"] for m in r["metrics"]}
    assert results == {"perplexity": 4.48, "bits per byte": 0.61}
    assert "0.6100 bits per byte" in body
    assert (
        "fine-tuned from `models/base`" in body
        and "perplexity 9.00 -> 4.48, bits per byte 0.9000 -> 0.6100" in body
    )
    # a masked LM's metrics have no bits per byte: the card leaves it out
    meta, body = card(evaluation={k: v for k, v in EVAL.items() if k != "bits_per_byte"})
    assert [m["name"] for m in meta["model-index"][0]["results"][0]["metrics"]] == ["perplexity"]
    assert "bits per byte" not in body and "fine-tuned" not in body
