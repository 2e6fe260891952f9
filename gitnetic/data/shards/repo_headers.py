"""``--repo_context``: a repository-level header before each document, in the tokenizer family's format.

StarCoder2 and Qwen2.5-Coder were pretrained on files that start with their repository's name and their
path (``<repo_name>R<file_sep>PATH\\n`` / ``<|repo_name|>R\\n<|file_sep|>PATH\\n``,
:func:`gitnetic.data.tokenizer.fim_tokens.repo_context`). Fine-tuning them on a team's files in that
layout keeps what they learnt from it, and lets ``generate --repo_name/--file_path`` prompt them the way
they were trained. The header goes into the shards, in front of the document's text, so every later step
(packing, blends, FIM, which keeps it in front of ``<fim_prefix>``) sees it as ordinary tokens; the
header needs no side index because only it holds the family's repository ids
(:func:`~gitnetic.data.tokenizer.fim_tokens.header_length`).

Which repository a record belongs to: its ``repository`` field (dataset sources), else the name a
``git`` source's label gives (:func:`git_repository_name`), read from the record's ``source`` when the
corpus wrote labels (``record_source: origin``) or from the corpus ``stats.json`` entry of the source it
names (``record_source: name``, the default of a ``sources:`` list). A record whose repository or path is
unknown, or whose path holds a line break, gets no header.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from gitnetic.data.tokenizer.fim_tokens import FimIds, fim_ids, repo_context

__all__ = ["RepoHeaders", "git_repository_name", "repo_headers"]

log = logging.getLogger(__name__)


def git_repository_name(label: object) -> str | None:
    """The repository name in a ``git`` source's label ``git:PATH@COMMIT``: the last component of
    ``PATH`` without a ``.git`` ending (``git:/src/mylib.git@1a2b`` -> ``mylib``; ``PATH/.git`` names its
    parent folder). None for other labels and for a ``PATH`` with no name of its own (``.``, ``..``, ``/``):
    the label holds the path as the corpus params gave it, and resolving it against today's working
    directory could name another folder."""
    if not isinstance(label, str) or not label.startswith("git:") or "@" not in label:
        return None
    parts = [p for p in PurePosixPath(label[4:].rsplit("@", 1)[0].replace("\\", "/")).parts if p != "/"]
    if parts and parts[-1] == ".git":
        parts.pop()
    name = parts[-1] if parts else ""
    if name.endswith(".git"):
        name = name[: -len(".git")]
    return name if name and name not in (".", "..") and "\n" not in name else None


@dataclass(frozen=True)
class RepoHeaders:
    """The family's repository ids and where records' repositories come from: one per preprocess run."""

    ids: FimIds
    source_repos: Mapping[str, str] = field(default_factory=dict)  # a source's name -> its git repository

    def repository(self, record: Mapping[str, Any]) -> str | None:
        """The record's repository name, or None when the corpus does not know it."""
        repo = record.get("repository")
        if isinstance(repo, str) and repo.strip():
            return repo
        source = record.get("source")
        if not isinstance(source, str):
            return None
        return self.source_repos.get(source) or git_repository_name(source)

    def key(self, record: Mapping[str, Any]) -> tuple[str, str] | None:
        """``(repository, path)`` of a record that gets a header, else None."""
        path = record.get("path")
        if not isinstance(path, str) or not path or "\n" in path:
            return None  # header_length finds a header's end at the path's newline
        repo = self.repository(record)
        return None if repo is None else (repo, path)

    def header(self, encode: Callable[[str], Sequence[int]], key: tuple[str, str]) -> np.ndarray:
        """The header ids of a file ``key = (repository, path)``, texts encoded by ``encode``."""
        return np.asarray(repo_context(self.ids, encode, key[0], key[1]), dtype=np.uint32)


def repo_headers(tokenizer: Any, tokenizer_path: str, stats_json: Path) -> RepoHeaders | None:
    """The headers ``--repo_context`` writes with ``tokenizer`` (a ``tokenizers.Tokenizer``); None, said in
    one log line, when its family has no repository-name tokens (the shards are then those of a run
    without the option)."""
    ids = fim_ids(tokenizer)
    if ids is None or ids.repo_name is None or ids.file_sep is None:
        family = "no known FIM family" if ids is None else f"the {ids.family} family"
        log.warning(
            "preprocess: --repo_context not used: the tokenizer %s (%s) has no repository-name tokens "
            "(StarCoder2's <repo_name>/<file_sep>, Qwen2.5-Coder's <|repo_name|>/<|file_sep|>); the shards "
            "hold the documents' text alone",
            tokenizer_path,
            family,
        )
        return None
    repos = _stats_repositories(stats_json)
    log.info(
        "preprocess: repository headers in the %s format before every document whose repository and path "
        "the corpus knows%s",
        ids.family,
        f" (git sources: {', '.join(f'{k}={v}' for k, v in repos.items())})" if repos else "",
    )
    return RepoHeaders(ids, repos)


def _stats_repositories(stats_json: Path) -> dict[str, str]:
    """Source name -> repository name of the ``git`` sources in the corpus ``stats.json`` (if readable)."""
    try:
        sources = json.loads(stats_json.read_text(encoding="utf-8")).get("sources") or {}
    except (OSError, ValueError, AttributeError):
        return {}
    out: dict[str, str] = {}
    for name, entry in sources.items() if isinstance(sources, dict) else ():
        repo = git_repository_name(entry.get("label")) if isinstance(entry, dict) else None
        if repo is not None:
            out[str(name)] = repo
    return out
