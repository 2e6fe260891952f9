"""The params of one corpus source (one ``corpus.sources`` entry), at the bottom of the sources package so
the corpus params (:mod:`gitnetic.data.corpus.params`) and every source module import them typed, without
importing the modules that read files or repositories."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Literal

import yaml

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError
from gitnetic.data.source_routing import SOURCE_NAME

__all__ = ["DATASET_FIELDS", "DATASET_TYPES", "SOURCE_TYPES", "STDLIB_EXCLUDES", "SourceParams"]

# The stdlib folder may contain third-party packages; they are not the standard library. Its test suites,
# IDLE, turtle demos and the deprecated lib2to3 are left out too: they belong to the stdlib source only
# (a user's own repository keeps its tests/ unless --exclude says otherwise).
STDLIB_EXCLUDES = (
    "site-packages/**",
    "dist-packages/**",
    "**/__pycache__/**",
    "test/**",
    "**/tests/**",
    "idlelib/**",
    "turtledemo/**",
    "lib2to3/**",
)

SOURCE_TYPES = ("stdlib", "dir", "git", "git-history", "parquet", "jsonl")
# Sources of one document per row (The Stack, StarCoderData, github-code, an export): see sources.dataset.
DATASET_TYPES = ("parquet", "jsonl")
DATASET_FIELDS = ("content", "path", "language", "license", "repository")  # the roles ``fields`` maps


@dataclass
class SourceParams(DataclassBase):
    """One entry of ``corpus.sources``: a named source and its own options."""

    name: str = field(
        default="",
        metadata={
            "help": "Name of the source: each document's 'source' field, stats.json key, shard prefix."
        },
    )
    type: Literal["stdlib", "dir", "git", "git-history", "parquet", "jsonl"] = field(
        default="stdlib",
        metadata={
            "help": "stdlib | dir | git | git-history | parquet | jsonl (a dataset of one source file per "
            "row, e.g. The Stack; jsonl reads .jsonl, .jsonl.gz and .jsonl.zst)."
        },
    )
    path: str | None = field(
        default=None,
        metadata={
            "help": "Folder (dir) or repository (git, git-history; bare is fine); parquet/jsonl: a file, "
            "a folder (its matching files, recursively) or a glob, read in sorted order."
        },
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
        default=None,  # type: ignore[assignment]  # resolved by __post_init__
        metadata={
            "help": "Globs a file (or a diffed file, or a dataset row's path) must match (default '**/*.py'; "
            "parquet/jsonl: '**', every row; choose a dataset's languages with 'languages')."
        },
    )
    exclude: list[str] = field(
        default_factory=list, metadata={"help": "Globs of files (or dataset rows' paths) to leave out."}
    )
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
    licenses: list[str] | None = field(
        default=None,
        metadata={
            "help": "Allow-list of SPDX license ids, e.g. [MIT, Apache-2.0]: the corpus stage refuses this "
            "source unless every license detected in its license files is listed (see "
            "gitnetic.data.corpus.licenses). parquet/jsonl: a row is kept only when it has a license and "
            "every license it lists is allowed (the others are counted as license_refused). Default: no "
            "check; the detected license is recorded either way."
        },
    )
    fields: dict[str, str] | None = field(
        default=None,
        metadata={
            "help": "parquet/jsonl: the dataset's column for each of content, path, language, license and "
            "repository, e.g. {content: text, language: lang}. Unmapped roles use the first column present "
            "of The Stack v1/dedup, StarCoderData, The Stack v2 and codeparrot/github-code names (see "
            "gitnetic.data.corpus.sources.dataset); content is required, the others are optional."
        },
    )
    languages: list[str] | None = field(
        default=None,
        metadata={
            "help": "parquet/jsonl: keep only rows of these languages, by the dataset's own label "
            "(case-insensitive; C++/cpp and C#/csharp both work); the others are counted as other_language. "
            "Default: every row."
        },
    )
    exclude_repos: str | None = field(
        default=None,
        metadata={
            "help": "parquet/jsonl: a text file, one repository per line (owner/name or its URL; '#' "
            "comments): their rows are dropped and counted as opted_out (The Stack's opt-out list)."
        },
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

    def root(self) -> Path:
        """``path`` as a folder (``~`` expanded): the folder or repository of a dir/git/git-history source."""
        if not self.path:
            raise ConfigError(
                f"corpus source {self.name!r}: type {self.type} needs a path; add 'path: FOLDER'"
            )
        return Path(self.path).expanduser()

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
        if self.include is None:
            self.include = ["**"] if self.type in DATASET_TYPES else ["**/*.py"]
        self.include = [self.include] if isinstance(self.include, str) else list(self.include)
        self.exclude = [self.exclude] if isinstance(self.exclude, str) else list(self.exclude)
        if not self.include:
            raise ConfigError(f"{where}: include needs at least one glob pattern, e.g. '**/*.py'")
        if self.record_source not in ("name", "origin"):
            raise ConfigError(f"{where}: record_source must be name or origin, got {self.record_source!r}")
        if isinstance(self.licenses, str):  # a YAML scalar: one license
            self.licenses = [self.licenses]
        self._check_dataset_keys(where)
        if self.clean is None:
            self.clean = self.type != "stdlib"

    def _check_dataset_keys(self, where: str) -> None:
        dataset_only = [k for k in ("fields", "languages", "exclude_repos") if getattr(self, k) is not None]
        if dataset_only and self.type not in DATASET_TYPES:
            raise ConfigError(
                f"{where}: {', '.join(dataset_only)} {'is' if len(dataset_only) == 1 else 'are'} for types "
                f"parquet and jsonl only; remove {'it' if len(dataset_only) == 1 else 'them'} from this "
                f"{self.type} source"
            )
        if self.fields is not None:
            if not isinstance(self.fields, Mapping) or not all(
                isinstance(v, str) and v for v in self.fields.values()
            ):
                raise ConfigError(
                    f"{where}: fields must map roles to column names, e.g. {{content: text}}; got {self.fields!r}"
                )
            unknown = sorted(set(self.fields) - set(DATASET_FIELDS))
            if unknown:
                raise ConfigError(
                    f"{where}: fields has unknown role(s) {unknown}; valid roles: {', '.join(DATASET_FIELDS)}"
                )
            self.fields = dict(self.fields)
        if isinstance(self.languages, str):
            self.languages = [self.languages]

    @classmethod
    def parse(cls, value: object, index: int) -> SourceParams:
        """One ``corpus.sources`` entry: a mapping (YAML) or a YAML/JSON string (``--sources`` flag)."""
        if isinstance(value, SourceParams):
            return value
        if isinstance(value, str):
            value = _flag_mapping(value, f"corpus.sources[{index}]")
        if not isinstance(value, Mapping):
            raise ConfigError(
                f"corpus.sources[{index}] must be a mapping, got {_kind(value)}; e.g. {EXAMPLE}"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ConfigError(
                f"corpus.sources[{index}] ({value.get('name', '?')}): unknown key(s) {unknown}; "
                f"valid keys: {', '.join(sorted(known))}"
            )
        return cls(**value)


EXAMPLE = "{name: code, type: dir, path: src}"  # one source, as a --sources value or a params.yaml entry


def _flag_mapping(text: str, where: str) -> object:
    """The mapping a ``--sources`` value spells. Why not just ``yaml.safe_load``: what it makes of a
    mistyped value (None, a string, a list) says nothing about the mistake; the message here quotes the
    value, says what is wrong with it (YAML's own words and position for a syntax error) and shows the
    right form."""
    flag = f"{where}: --sources {text!r}"
    example = f"e.g. --sources '{EXAMPLE}'"
    if not text.strip():
        raise ConfigError(f"{flag} is empty; give each source as one YAML mapping, {example}")
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = (getattr(exc, "problem", None) or str(exc).splitlines()[0]).replace(
            "'<stream end>'", "the end"
        )
        mark = getattr(exc, "problem_mark", None)
        at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(
            f"{flag} is not valid YAML ({problem}{at}); write each source as one mapping in braces, {example}"
        ) from None
    if isinstance(value, list | tuple):
        raise ConfigError(
            f"{flag} must be one mapping, got a list; give each source its own value, "
            f"{example} '{{name: lib, type: git, path: ../lib}}'"
        )
    if not isinstance(value, Mapping):
        raise ConfigError(f"{flag} must be a mapping, got {_kind(value)}; {example}")
    return value


def _kind(value: object) -> str:
    """A wrong ``sources`` entry in words: ``nothing``, ``the string 'x'``, ``a list [1, 2]``, ``the number 5``."""
    if value is None:
        return "nothing (an empty entry)"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, list | tuple):
        return f"a list {list(value)!r}"
    if isinstance(value, bool):
        return f"the value {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return f"{type(value).__name__} {value!r}"
