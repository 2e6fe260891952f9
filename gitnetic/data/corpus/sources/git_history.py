"""``git-history`` source: one document per commit, its message and the unified diff of matching files.

Read with one streaming ``git log -p`` (no checkout, bare repositories fine); at most one commit's
kept diff (bounded by ``max_diff_bytes``) is in memory at a time. Commits come oldest first
(``--topo-order --reverse``), so the order is stable for a given history. The document layout is
specified in docs/corpus.md ("Commit documents"):

    <commit message, trailing blank lines removed>
    <blank line>
    diff --git a/<old path> b/<new path>      one section per kept file, in git's order
    ...                                       git's own headers and hunks, minus the 'index' line

The ``index <blob>..<blob>`` lines are dropped: they are abbreviated object ids (noise to a language
model, and their length grows with the repository, so the same commit would read differently later).
Author names and e-mail addresses are never written (personal data). Binary diffs, diffs of files the
include/exclude globs (or the lock-file filter) leave out, and file diffs that would take the commit
past ``max_diff_bytes`` are left out and counted; a commit with nothing left is skipped and counted.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import subprocess
from collections.abc import Callable, Iterator

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.sources.base import Candidate, OpenedSource
from gitnetic.data.corpus.sources.git import GIT_ENV, check_repo, git_error_line, resolve_commit, run_git
from gitnetic.data.corpus.sources.globs import compile_globs
from gitnetic.data.corpus.sources.lang import COMMIT_LANG
from gitnetic.data.corpus.sources.params import SourceParams

__all__ = ["HISTORY_SKIPS", "diff_section_paths", "open_git_history"]

# what this source itself leaves out, counted in stats.json under the source's "skipped"
HISTORY_SKIPS = (
    "binary_diffs",
    "excluded_diffs",
    "lock_file_diffs",
    "diffs_over_cap",
    "commits_without_diff",
)

_DIFF_OPTIONS = (
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--find-renames",
    "--src-prefix=a/",
    "--dst-prefix=b/",
    "--topo-order",
    "--reverse",
)


def _unquote(path: bytes) -> str:
    """git C-quotes paths with special characters: ``"a/\\303\\251.py"`` -> ``a/é.py``."""
    text = path.decode("utf-8", "surrogateescape")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        raw = codecs.escape_decode(path[1:-1])[0]
        text = raw.decode("utf-8", "replace")
    return text


def diff_section_paths(section: list[bytes]) -> list[str]:
    """The file paths one ``diff --git`` section touches (old and new; /dev/null left out)."""
    paths: list[str] = []
    for line in section[1:]:
        if line.startswith((b"--- ", b"+++ ")):
            name = _unquote(line[4:].rstrip(b"\n"))
            if name != "/dev/null":
                paths.append(name[2:] if name[:2] in ("a/", "b/") else name)
        elif line.startswith((b"rename from ", b"rename to ", b"copy from ", b"copy to ")):
            paths.append(_unquote(line.split(b" ", 2)[2].rstrip(b"\n")))
        elif line.startswith(b"@@"):
            break
    if not paths:  # mode-only or binary change: the header is "diff --git a/P b/P" with P twice
        rest = section[0][len(b"diff --git ") :].rstrip(b"\n")
        half = (len(rest) - 1) // 2
        paths.append(_unquote(rest[:half])[2:] if rest[:half].startswith(b"a/") else _unquote(rest[:half]))
    return paths


def _is_binary(section: list[bytes]) -> bool:
    return any(
        line.startswith(b"GIT binary patch")
        or (line.startswith(b"Binary files ") and line.endswith(b" differ\n"))
        for line in section[1:8]
    )


class _History:
    """Parses ``git log -p --format=%x00%H%x00%B%x00`` into commit candidates, counting what it leaves out."""

    def __init__(
        self, params: SourceParams, stream: Iterator[bytes], drop_path: Callable[[str], bool] | None
    ) -> None:
        self.keep = compile_globs(params.include)
        self.excluded = compile_globs(params.exclude)
        self.drop_path = drop_path
        self.cap = params.max_diff_bytes
        self.stream = stream
        self.skipped = dict.fromkeys(HISTORY_SKIPS, 0)

    def __iter__(self) -> Iterator[Candidate]:
        sha: str | None = None
        message = b""
        kept: list[bytes] = []
        kept_bytes = 0
        section: list[bytes] | None = None
        section_bytes = 0

        def close_section() -> None:
            nonlocal section, kept_bytes
            if section is None:
                return
            reason = self._section_reason(section, kept_bytes + section_bytes)
            if reason:
                self.skipped[reason] += 1
            else:
                kept.extend(section)
                kept_bytes += section_bytes
            section = None

        def finish() -> Candidate | None:
            close_section()
            if sha is None:
                return None
            if not kept:
                self.skipped["commits_without_diff"] += 1
                return None
            text = message.rstrip(b"\n").rstrip() + b"\n\n" + b"".join(kept)
            return Candidate(sha, len(text), lambda: text, {"commit": sha}, COMMIT_LANG)

        lines = iter(self.stream)
        for line in lines:
            if line.startswith(b"\0"):  # "\0<sha>\0<message...>\0": a new commit
                done = finish()
                if done is not None:
                    yield done
                header = line
                while header.count(b"\0") < 3:
                    more = next(lines, None)
                    if more is None:
                        raise CorpusError(
                            "git log output ended inside a commit header; is the repository intact?"
                        )
                    header += more
                _, raw_sha, message, _ = header.split(b"\0", 3)
                sha, kept, kept_bytes, section = raw_sha.decode(), [], 0, None
            elif line.startswith(b"diff --git "):
                close_section()
                section, section_bytes = [line], len(line)
            elif section is not None and not line.startswith(b"index "):
                if self.cap and kept_bytes + section_bytes > self.cap:
                    section_bytes += len(line)  # over the cap already: count, do not buffer
                    continue
                section.append(line)
                section_bytes += len(line)
        done = finish()
        if done is not None:
            yield done

    def _section_reason(self, section: list[bytes], total: int) -> str | None:
        if _is_binary(section):
            return "binary_diffs"
        paths = diff_section_paths(section)
        if not any(self.keep(p) for p in paths) or any(self.excluded(p) for p in paths):
            return "excluded_diffs"
        if self.drop_path is not None and any(self.drop_path(p) for p in paths):
            return "lock_file_diffs"
        if self.cap and total > self.cap:
            return "diffs_over_cap"
        return None


@contextlib.contextmanager
def open_git_history(
    params: SourceParams, drop_path: Callable[[str], bool] | None = None
) -> Iterator[OpenedSource]:
    """Stream the commits of ``rev_range`` (or the newest ``max_commits`` of ``rev``) as documents."""
    repo = params.root()
    check_repo(repo)
    if params.rev_range:
        spec = params.rev_range
        ends = [e for e in spec.replace("...", "..").split("..") if e]
        for end in ends:
            resolve_commit(repo, end)  # a clear error for a typo in either end
        commit = resolve_commit(repo, ends[-1] if spec.rstrip(".") == spec else "HEAD")
        what = f"commits {spec}"
    else:
        spec = commit = resolve_commit(repo, params.rev)
        what = f"commits up to {params.rev}"
    limit = [f"--max-count={params.max_commits}"] if params.max_commits else []
    merges = ["--no-merges"] if params.no_merges else ["--diff-merges=first-parent"]
    proc = run_git(repo, "rev-list", "--count", *merges[:1] if params.no_merges else [], *limit, spec, "--")
    if proc.returncode != 0:
        raise CorpusError(f"cannot list {spec!r} in git repository {repo} ({git_error_line(proc)})")
    count = int(proc.stdout.decode().strip() or 0)
    cmd = [
        "git",
        "-C",
        str(repo),
        "log",
        *merges,
        *limit,
        *_DIFF_OPTIONS,
        "-p",
        "--format=%x00%H%x00%B%x00",
        spec,
        "--",
    ]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env={**os.environ, **GIT_ENV}
    ) as log_proc:
        assert log_proc.stdout is not None
        history = _History(params, iter(log_proc.stdout), drop_path)
        opened = OpenedSource(
            f"git-history:{params.path}@{commit}",
            f"git history of {repo}, {what} ({commit[:12]})",
            history,
            count,
            commit=commit,
            skipped=history.skipped,
        )
        try:
            yield opened
        finally:
            log_proc.stdout.close()
            log_proc.kill()
