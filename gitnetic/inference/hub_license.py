"""The model card's ``license`` as the Hugging Face Hub accepts it, from the corpus' SPDX licenses.

The Hub takes one id from its own list (https://huggingface.co/docs/hub/repositories-licenses), lower
case, and refuses anything else: ``0bsd and python-2.0.1`` (an SPDX expression lower-cased) is not a
license there. Most ids on that list are SPDX ids lower-cased (``MIT`` -> ``mit``, ``Apache-2.0`` ->
``apache-2.0``); the GNU ones drop SPDX's ``-only``/``-or-later`` (``GPL-3.0-or-later`` -> ``gpl-3.0``),
and a few data licenses drop their version (``ODbL-1.0`` -> ``odbl``). A corpus under one such license
gets its id; several licenses, or one the list lacks (``0BSD``, ``Python-2.0``), get ``license: other``
with a ``license_name`` spelled as the Hub wants it (lower case, digits, ``-`` and ``.``:
``0bsd-and-python-2.0.1``), and the card's text lists them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["HUB_LICENSES", "hub_license", "hub_license_id"]

# The Hub's license ids (its documentation's table, as of 2026), SPDX-derived ones and the rest.
HUB_LICENSES = frozenset(
    """
    apache-2.0 mit openrail bigscience-openrail-m creativeml-openrail-m bigscience-bloom-rail-1.0
    bigcode-openrail-m afl-3.0 artistic-2.0 bsl-1.0 bsd bsd-2-clause bsd-3-clause bsd-3-clause-clear c-uda
    cc cc0-1.0 cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0
    cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0
    cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 epl-2.0
    etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gfdl gpl gpl-2.0 gpl-3.0 lgpl lgpl-2.1 lgpl-3.0 isc lppl-1.3c
    ms-pl mpl-2.0 odc-by odbl openrail++ osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib pddl lgpl-lr
    deepfloyd-if-license llama2 llama3 llama3.1 llama3.2 llama3.3 gemma unknown other
    """.split()
)
_GNU = re.compile(r"(agpl|lgpl|gpl|gfdl)-(\d\.\d)(?:-only|-or-later|\+)?")
_VERSIONLESS = {"odbl-1.0": "odbl", "odc-by-1.0": "odc-by", "pddl-1.0": "pddl"}
_NAME_CHARS = re.compile(r"[^a-z0-9.-]+")


def hub_license_id(spdx: str) -> str | None:
    """The Hub's id for one SPDX license id, or None when its list has none."""
    lower = spdx.strip().lower()
    gnu = _GNU.fullmatch(lower)
    if gnu:
        family, version = gnu.groups()
        if family == "gfdl":
            return "gfdl"
        versioned = f"{family}-{version}"
        return versioned if versioned in HUB_LICENSES else (family if family in HUB_LICENSES else None)
    lower = _VERSIONLESS.get(lower, lower)
    return lower if lower in HUB_LICENSES and lower not in {"other", "unknown"} else None


def hub_license(spdx_ids: Iterable[str], unknown: bool = False) -> tuple[str, str | None]:
    """``(license, license_name)`` for a model trained on text under all of ``spdx_ids`` (``unknown``:
    some of it under no license found): one Hub id and None, or ``other`` and a name of the whole list."""
    ids = sorted(set(spdx_ids), key=str.lower)
    if not ids:
        return "unknown", None
    hub = {hub_license_id(i) for i in ids}
    if not unknown and len(hub) == 1 and None not in hub:
        return str(next(iter(hub))), None
    name = "-and-".join([*ids, *(["unknown"] if unknown else [])]).lower()
    return "other", _NAME_CHARS.sub("-", name).strip("-")
