"""Corpus sources: where documents come from (``corpus.sources`` in params.yaml, one entry each).

Each source type lives in its own module and yields :class:`Candidate` documents in a stable order:

* ``stdlib`` (:mod:`.stdlib`): this Python's standard library, always available, no download;
* ``dir`` (:mod:`.dir`): a folder tree;
* ``git`` (:mod:`.git`): a repository at one revision, read with ``git ls-tree``/``cat-file`` (no checkout);
* ``git-history`` (:mod:`.git_history`): the commits of a revision range, one document per commit
  (message + unified diff), streamed from ``git log``.

The corpus stage (:mod:`gitnetic.data.corpus`) reads the candidates, filters, redacts, de-duplicates
and splits them; a source only finds and reads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, NamedTuple

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.data.source_routing import SOURCE_NAME

__all__ = ["SOURCE_TYPES", "Candidate", "OpenedSource", "SourceParams", "open_source"]

SOURCE_TYPES = ("stdlib", "dir", "git", "git-history")


@dataclass
class SourceParams(DataclassBase):
    """One entry of ``corpus.sources``: a named source and its own options."""

    name: str = field(
        default="",
        metadata={
            "help": "Name of the source: each document's 'source' field, stats.json key, shard prefix."
        },
    )
    type: Literal["stdlib", "dir", "git", "git-history"] = field(
        default="stdlib", metadata={"help": "stdlib | dir | git | git-history."}
    )
    path: str | None = field(
        default=None, metadata={"help": "Folder (dir) or repository (git, git-history; bare is fine)."}
    )
    rev: str = field(
        default="HEAD",
        metadata={"help": "git: the revision to read. git-history: the newest commit (with max_commits)."},
    )
    rev_range: str | None = field(
        default=None,
        metadata={"help": "git-history: a revision range such as 'v1.0..v2.0' (instead of rev)."},
    )
    max_commits: int = field(
        default=0, metadata={"help": "git-history: at most the newest N commits of the range; 0 = all."}
    )
    no_merges: bool = field(
        default=True, metadata={"help": "git-history: leave merge commits out (git log --no-merges)."}
    )
    max_diff_bytes: int = field(
        default=200_000,
        metadata={
            "help": "git-history: file diffs that would take a commit's diff past this many bytes are left "
            "out (whole files, never half a hunk); 0 = no cap."
        },
    )
    include: list[str] = field(
        default_factory=lambda: ["**/*.py"],
        metadata={"help": "Globs a file (or a diffed file) must match."},
    )
    exclude: list[str] = field(default_factory=list, metadata={"help": "Globs of files to leave out."})
    max_file_bytes: int = field(
        default=1_000_000,
        metadata={"help": "Skip files (or commit documents) larger than this; 0 = no limit."},
    )
    max_files: int = field(
        default=0, metadata={"help": "Stop this source after keeping this many documents; 0 = no limit."}
    )
    max_bytes: int = field(
        default=0, metadata={"help": "Stop this source before its kept bytes exceed this; 0 = no limit."}
    )
    clean: bool | None = field(
        default=None,
        metadata={
            "help": "Apply the corpus' quality filters, redaction and near-dedup to this source's documents "
            "(they are still indexed, so later sources' copies of them are dropped). Default: on for every "
            "type except stdlib, whose demo corpus stays byte-identical to earlier gitnetic versions."
        },
    )
    record_source: Literal["name", "origin"] = field(
        default="name",
        metadata={
            "help": "What each document's 'source' field holds: 'name' (this source's name) or 'origin' "
            "(where it was read: stdlib:python3.11.7, dir:PATH, git:PATH@COMMIT; what the single-source "
            "keys always wrote, so the default pipeline's corpus stays byte-identical)."
        },
    )

    def __post_init__(self) -> None:
        where = f"corpus source {self.name or '?'!r}"
        if not self.name or not SOURCE_NAME.match(self.name):
            raise ConfigError(
                f"{where}: name must be letters, digits, '_', '.', '-' (it names shard files), got {self.name!r}"
            )
        if self.type not in SOURCE_TYPES:
            raise ConfigError(f"{where}: unknown type {self.type!r}; use one of {', '.join(SOURCE_TYPES)}")
        if self.type != "stdlib" and not self.path:
            raise ConfigError(
                f"{where}: type {self.type} needs a path; add 'path: FOLDER' to it (--path FOLDER with --source)"
            )
        if self.rev_range is not None and self.type != "git-history":
            raise ConfigError(f"{where}: rev_range is for type git-history only; use rev for type git")
        for name in ("max_commits", "max_diff_bytes", "max_file_bytes", "max_files", "max_bytes"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{where}: {name} must be >= 0 (0 = no limit), got {getattr(self, name)}")
        self.include = [self.include] if isinstance(self.include, str) else list(self.include)
        self.exclude = [self.exclude] if isinstance(self.exclude, str) else list(self.exclude)
        if not self.include:
            raise ConfigError(f"{where}: include needs at least one glob pattern, e.g. '**/*.py'")
        if self.record_source not in ("name", "origin"):
            raise ConfigError(f"{where}: record_source must be name or origin, got {self.record_source!r}")
        if self.clean is None:
            self.clean = self.type != "stdlib"

    @classmethod
    def parse(cls, value: Any, index: int) -> SourceParams:
        """One ``corpus.sources`` entry: a mapping (YAML) or a YAML/JSON string (``--sources`` flag)."""
        if isinstance(value, str):
            import yaml

            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                value = None
        if isinstance(value, SourceParams):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"corpus.sources[{index}] must be a mapping like {{name: code, type: dir, path: src}}, "
                f"got {value!r}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"corpus.sources[{index}] ({value.get('name', '?')}): unknown key(s) {unknown}; "
                f"valid keys: {', '.join(sorted(known))}"
            )
        return cls(**value)


class Candidate(NamedTuple):
    """One document a source offers, read lazily so that skipped files cost no I/O."""

    key: str  # what the split hash uses: the relative path, or the commit id
    size: int  # bytes, for max_file_bytes before reading
    read: Callable[[], bytes]
    fields: dict[str, str]  # record fields besides text/source/lang: {"path": ...} or {"commit": ...}
    lang: str


@dataclass
class OpenedSource:
    """A source ready to read: what to call it and its candidates in a stable order."""

    label: str  # e.g. stdlib:python3.11.7, git:/repo@<commit>; the single-source form's 'source' field
    description: str  # for messages: "git repository /x at main (1a2b3c4d5e6f)"
    candidates: Iterable[Candidate]
    count: int | None  # candidates to expect (progress bar), None when not known up front
    commit: str | None = None  # resolved commit id (git, git-history)
    skipped: dict[str, int] = field(default_factory=dict)  # drops the source itself makes (e.g. binary diffs)


@contextlib.contextmanager
def open_source(
    params: SourceParams, drop_path: Callable[[str], bool] | None = None
) -> Iterator[OpenedSource]:
    """Open one source of any type (a context manager: git sources hold a subprocess).

    ``drop_path(path)`` leaves files out of commit diffs (the lock-file filter); file sources leave
    filtering to the corpus stage, which counts it.
    """
    if params.type == "stdlib":
        from gitnetic.data.sources.stdlib import open_stdlib as opener
    elif params.type == "dir":
        from gitnetic.data.sources.dir import open_dir as opener
    elif params.type == "git":
        from gitnetic.data.sources.git import open_git as opener
    else:
        from gitnetic.data.sources.git_history import open_git_history

        with open_git_history(params, drop_path) as opened:
            yield opened
        return
    with opener(params) as opened:
        yield opened
