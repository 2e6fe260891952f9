"""``--by_source``: which output prefix each corpus document goes to (``{split}-{source}`` or a group's).

Kept apart from the binarizer because ``workflow/Snakefile`` needs the same names to declare a
preprocess job's outputs before the corpus exists, and because routing is a question about the corpus
(its ``stats.json``), not about tokens. The source names come from ``stats.json``, not from the
documents seen, so every shard job of every split writes the same set of prefixes (an empty one where
a split has no document of a source).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError

__all__ = [
    "SOURCE_NAME",
    "SourceRoutes",
    "by_source_names",
    "corpus_source_names",
    "parse_source_groups",
    "source_groups_of",
    "source_routes",
]

# A corpus source's (or group's) name: it becomes part of shard file names, {split}-{name}.
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*\Z")


def parse_source_groups(value: Sequence[str] | Mapping[str, Any] | None) -> dict[str, list[str]]:
    """``--source_groups``: ``["code=a,b", "commits=c"]`` or ``{code: [a, b], commits: c}`` -> ``{group: [sources]}``."""
    if not value:
        return {}
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for entry in [value] if isinstance(value, str) else value:
            group, sep, members = str(entry).partition("=")
            if not sep:
                raise ConfigError(
                    f"--source_groups entry {entry!r} must be GROUP=SOURCE,SOURCE (e.g. code=stdlib,app)"
                )
            items.append((group.strip(), members))
    groups: dict[str, list[str]] = {}
    for group, members in items:
        names = [m.strip() for m in members.split(",")] if isinstance(members, str) else list(members or [])
        names = [str(n) for n in names if str(n)]
        if not SOURCE_NAME.match(group):
            raise ConfigError(
                f"source group name {group!r} must be letters, digits and _.- (it becomes a file name)"
            )
        if group in groups:
            raise ConfigError(f"source group {group!r} is given twice in --source_groups; merge the two")
        if not names:
            raise ConfigError(f"source group {group!r} lists no source; give GROUP=SOURCE[,SOURCE...]")
        groups[group] = names
    return groups


def source_groups_of(source_names: Sequence[str], groups: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each corpus source's output name under ``--by_source``: its group, else its own name.

    The result's values, in order of first appearance, are the prefixes written per split
    (``workflow/Snakefile`` declares them from this too). Unknown or doubly grouped sources, and a group
    named like a source outside it, are one-line errors.
    """
    known = list(source_names)
    owner: dict[str, str] = {}
    for group, members in groups.items():
        for name in members:
            if name not in known:
                raise ConfigError(
                    f"source group {group!r} names {name!r}, which is not a corpus source; "
                    f"the sources are {', '.join(known)}"
                )
            if name in owner:
                raise ConfigError(f"source {name!r} is in two groups ({owner[name]!r}, {group!r}); keep one")
            owner[name] = group
        if group in known and owner.get(group) != group and group not in members:
            raise ConfigError(
                f"source group {group!r} has the name of another source; rename the group or put "
                f"{group!r} into it"
            )
    for name in known:
        if not SOURCE_NAME.match(name):
            raise ConfigError(
                f"corpus source {name!r} cannot name a shard file; --by_source needs names of letters, "
                "digits and _.- (set them in corpus.sources)"
            )
    return {name: owner.get(name, name) for name in known}


def by_source_names(
    source_names: Sequence[str], source_groups: Sequence[str] | Mapping[str, Any] | None
) -> list[str]:
    """The per-split prefix names ``--by_source`` writes (``{split}-{name}``), in corpus source order."""
    return list(dict.fromkeys(source_groups_of(source_names, parse_source_groups(source_groups)).values()))


@dataclass(frozen=True)
class SourceRoutes:
    """Where ``--by_source`` sends a document: ``names[index[record["source"]]]``."""

    names: list[str]  # the output names, in corpus source order: prefixes {split}-{name}
    index: dict[str, int]  # a record's 'source' value (a source's name or its label) -> index into names


def source_routes(
    stats_path: Path, source_groups: Sequence[str] | Mapping[str, Any] | None = None
) -> SourceRoutes:
    """The routes for the corpus whose ``stats.json`` is ``stats_path``.

    Records carry the source's name, or (``record_source: origin``, e.g. the single-source keys) the
    source's label such as ``stdlib:python3.11.7``; stats.json holds both, so either routes.
    """
    try:
        sources = json.loads(stats_path.read_text(encoding="utf-8"))["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        sources = None
    if not isinstance(sources, dict) or not sources:
        raise DataError(
            f"--by_source needs the corpus stage's {stats_path} (it names the sources); re-run "
            "'python -m gitnetic corpus' or turn --by_source off"
        )
    group_of = source_groups_of(list(sources), parse_source_groups(source_groups))
    names = by_source_names(list(sources), source_groups)
    index: dict[str, int] = {}
    for name, info in sources.items():
        index[name] = names.index(group_of[name])
        label = info.get("label") if isinstance(info, dict) else None
        if isinstance(label, str):
            index.setdefault(label, index[name])
    return SourceRoutes(names, index)


def corpus_source_names(stats_path: Path) -> list[str]:
    """The corpus's source names (from its stats.json; none when it is missing or unreadable).

    Only these per-source prefixes are cleaned after a run without ``--by_source``: a name is known to
    be a corpus source, never a file of the user's own that happens to share the output folder. Group
    names (``--source_groups``) are not recorded there, so a grouped prefix stays until removed by hand.
    """
    try:
        sources = json.loads(stats_path.read_text(encoding="utf-8")).get("sources")
    except (OSError, ValueError, AttributeError):
        return []
    return [name for name in sources if isinstance(name, str)] if isinstance(sources, dict) else []
