"""Each corpus source's license, on record (``stats.json`` -> ``licenses``) and checked against an allow-list.

A model trained on code carries the obligations of that code's licenses, so the corpus records, per
source, the SPDX license of the repository or folder it read: the license files at its root
(``LICENSE``, ``LICENCE``, ``COPYING``, ``UNLICENSE``, ``COPYRIGHT``, with or without an extension or a
``-MIT``/``.LESSER``-style suffix), each identified with `licenseclassifier` (a pure-Python port of
Google's licensecheck, the matcher behind pkg.go.dev: 693 SPDX licenses, and it reports nothing rather
than a guess when the text is not mostly a license). Several licenses (dual licensing, bundled
third-party notices) are recorded as one SPDX expression joined with ``AND``; none found is ``null``.
Deprecated bare GNU ids (``GPL-2.0``) are written as SPDX now spells them (``GPL-2.0-only``).

Why this detector (docs/corpus.md has the measurement): on 19 real license files it gave ScanCode
Toolkit's answers on 18 (ScanCode named torch's modified BSD text, it named nothing), in 0.7 s against
ScanCode's 12.6 s, as a 1.8 MB dependency-free wheel against ScanCode's 746 MB install (which, as
released, does not import next to this project's pluggy); askalono, the other light matcher, named
requests' Apache-2.0 file "Pixar".

Where the root is: a ``dir`` source's folder, or the nearest parent up to its repository's top (the one
holding ``.git``) that has a license file; a ``git``/``git-history`` source's tree at the revision read
(at ``rev``, or the newest end of ``rev_range``), first the sub-tree the path names, then the
repository's top; the ``stdlib`` source's library folder (its ``LICENSE.txt``).

A source's ``licenses`` option is an allow-list: when it is set, every license of the source's
expression must be in it, else the corpus stage stops before writing anything, with a one-line error
naming the source and the license (no license found is refused too).

A dataset source (``parquet``, ``jsonl``) has no license file: each row carries its repository's
licenses, the allow-list is applied row by row (:mod:`gitnetic.data.corpus.sources.dataset`) and its
expression on record is the ``AND`` of the kept rows' licenses, known once the source is read.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.sources.params import DATASET_TYPES, SourceParams

__all__ = [
    "LICENSE_FILE",
    "check_allowed",
    "detect_license",
    "license_ids",
    "source_license",
    "source_licenses",
]

LICENSE_FILE = re.compile(
    r"(?:LICEN[CS]E|COPYING|UNLICENSE|COPYRIGHT)(?:[-._][A-Za-z0-9.-]+)?(?:\.(?:txt|md|rst))?", re.IGNORECASE
)
# SPDX's deprecated bare GNU ids mean "-only".
_BARE_GNU = re.compile(r"(?:A?GPL|LGPL|GFDL)-\d\.\d\Z")
_MAX_LICENSE_BYTES = 1_000_000


def _spdx(license_id: str) -> str:
    return f"{license_id}-only" if _BARE_GNU.match(license_id) else license_id


def detect_license(texts: Iterable[str]) -> str | None:
    """The SPDX expression of these license files' texts (``"MIT"``, ``"MIT AND MPL-2.0"``), or None."""
    from licenseclassifier import identify_license

    found: set[str] = set()
    for text in texts:
        found.update(_spdx(match.id) for match in identify_license(text))
    return " AND ".join(sorted(found)) or None


def license_ids(expression: str | None) -> list[str]:
    """The license ids of an expression written by :func:`detect_license`."""
    return expression.split(" AND ") if expression else []


def _decode(data: bytes) -> str:
    return data[:_MAX_LICENSE_BYTES].decode("utf-8", "replace")


def _dir_license_texts(root: Path, walk_up: bool = True) -> list[str]:
    folder = root.resolve()
    chain = [folder, *folder.parents]
    top = next((i for i, f in enumerate(chain) if (f / ".git").exists()), None)
    # up to the repository's top, never above it; a folder outside any repository is its own root
    for candidate in chain[: top + 1] if walk_up and top is not None else [folder]:
        files = sorted(p for p in candidate.iterdir() if p.is_file() and LICENSE_FILE.fullmatch(p.name))
        if files:
            return [_decode(p.read_bytes()) for p in files]
    return []


def _git_license_texts(repo: Path, rev: str) -> list[str]:
    from gitnetic.data.corpus.sources.git import check_repo, resolve_commit, run_git

    check_repo(repo)
    commit = resolve_commit(repo, rev)
    for scope in ((), ("--full-tree",)):  # the sub-tree the path names, then the repository's top
        listing = run_git(repo, "ls-tree", "-z", *scope, commit)
        blobs = []
        for raw in listing.stdout.split(b"\0"):
            meta, _, name = raw.partition(b"\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == b"blob":
                base = name.decode("utf-8", "replace").rsplit("/", 1)[-1]
                if LICENSE_FILE.fullmatch(base):
                    blobs.append((base, parts[2].decode()))
        if blobs:
            return [_decode(run_git(repo, "cat-file", "blob", sha).stdout) for _, sha in sorted(blobs)]
    return []


def _newest_rev(spec: SourceParams) -> str:
    if spec.rev_range:
        newest = spec.rev_range.split("..")[-1].lstrip(".")
        return newest or "HEAD"
    return spec.rev


def source_license(spec: SourceParams) -> str | None:
    """Detect one source's license (see the module doc for where its root is); None for a dataset."""
    if spec.type in DATASET_TYPES:
        return None
    if spec.type == "stdlib":
        from gitnetic.data.corpus.sources.stdlib import stdlib_root

        texts = _dir_license_texts(stdlib_root(), walk_up=False)
    elif spec.type == "dir":
        assert spec.path is not None
        root = Path(spec.path).expanduser()
        texts = _dir_license_texts(root) if root.is_dir() else []
    else:
        assert spec.path is not None
        texts = _git_license_texts(Path(spec.path).expanduser(), _newest_rev(spec))
    return detect_license(texts)


def check_allowed(spec: SourceParams, expression: str | None) -> None:
    """Raise :class:`CorpusError` when ``spec.licenses`` is set and ``expression`` is not all in it."""
    if spec.licenses is None:
        return
    allowed = {_spdx(name).lower() for name in spec.licenses}
    refused = [i for i in license_ids(expression) if i.lower() not in allowed]
    where = f"corpus source {spec.name!r}" + (f" ({spec.path})" if spec.path else "")
    listed = ", ".join(spec.licenses) or "nothing"
    if expression is None:
        raise CorpusError(
            f"{where}: no license detected (no LICENSE/COPYING file at its root, or not a license text), "
            f"and its licenses allow-list is [{listed}]; add a license file or remove 'licenses'"
        )
    if refused:
        raise CorpusError(
            f"{where}: license {' AND '.join(refused)} is not in its licenses allow-list [{listed}]; "
            f"leave the source out or add the license to 'licenses'"
        )


def source_licenses(specs: Iterable[SourceParams]) -> Iterator[tuple[str, str | None]]:
    """``(name, expression)`` per source, each checked against its allow-list (raises on a refusal); a
    dataset source's expression is filled in once its rows are decided."""
    for spec in specs:
        if spec.type in DATASET_TYPES:
            yield spec.name, None
            continue
        expression = source_license(spec)
        if spec.type == "dir" and not Path(spec.path or "").expanduser().is_dir():
            yield spec.name, None  # opening the source says what is wrong with its path
            continue
        check_allowed(spec, expression)
        yield spec.name, expression
