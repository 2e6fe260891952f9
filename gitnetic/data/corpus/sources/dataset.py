"""``parquet`` and ``jsonl`` sources: datasets of one source file per row (The Stack, StarCoderData, The
Stack v2's content-carrying subsets, codeparrot/github-code, a team's own export).

Why rows become ordinary candidates: each row is one document with its path, language, license and
repository beside it, and from here on it goes through exactly what a file goes through (size and
binary checks, quality filters, redaction, exact and near-dedup, decontamination, splits, caps).

* **Files.** ``path`` is a file, a folder (every ``.parquet``, or ``.jsonl``/``.jsonl.gz``/``.jsonl.zst``
  file under it) or a glob; files are read in sorted path order, rows in file order.
* **Columns.** ``fields`` maps the roles content, path, language, license and repository to columns;
  an unmapped role takes the first column present of :data:`DEFAULT_COLUMNS`, which reads The Stack
  v1/dedup, StarCoderData, The Stack v2 and github-code as they are. Only those columns are read.
* **Streamed.** Parquet is read a bounded batch of one row group at a time (pyarrow), JSONL a line at a
  time from a gzip or zstd stream (``orjson`` per line): memory does not grow with the dataset.
* **Units.** A Parquet row group, or a whole JSONL file, is the unit the fan-out
  (:mod:`gitnetic.data.corpus.parts`) hands to its sign jobs; the list comes from Parquet footers and file
  sizes, so planning reads no content.
* **Rows the source drops** are candidates with a :class:`Dropped` reader, counted in corpus order as
  ``opted_out`` (``exclude_repos``), ``path_excluded`` (``include``/``exclude`` on the row's path),
  ``other_language`` (``languages``) and ``license_refused`` (``licenses``: a row is kept when it has at
  least one license and all of them are allowed; none is refused, as for a source without a license
  file). A null content counts as ``empty``; non-UTF-8 content as ``non_utf8``, oversized as
  ``too_large``, like files.
* **Records** carry ``path``, ``repository`` and ``license`` (the row's licenses joined with ``AND``;
  null when the row has none); the split key is ``repository/path``, so re-sharding a dataset never moves
  a document between splits. ``stats.json`` counts kept rows per license, and the source's entry in its
  ``licenses`` (and so the exported ``licenses.json``) is the ``AND`` of every kept row's licenses
  (``NOASSERTION`` for rows without one).

A damaged file (a truncated Parquet footer or page, a gzip or zstd stream cut short, a line that is not
JSON, a content that is not text) stops the stage with one line naming the file and the row or line.
"""

from __future__ import annotations

import contextlib
import glob
import gzip
import itertools
import json
import os
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.sources.base import Candidate, Dropped, OpenedSource
from gitnetic.data.corpus.sources.globs import compile_globs
from gitnetic.data.corpus.sources.lang import lang_of
from gitnetic.data.corpus.sources.params import DATASET_FIELDS, SourceParams

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq

__all__ = [
    "DATASET_SKIPS",
    "DEFAULT_COLUMNS",
    "NO_LICENSE",
    "dataset_files",
    "language_label",
    "license_key",
    "open_dataset",
    "read_opt_out",
]

# Drops a dataset source counts (stats.json -> sources.<name>.skipped), in the order they are checked.
DATASET_SKIPS = ("opted_out", "path_excluded", "other_language", "license_refused")

# Per role, the columns tried in order when ``fields`` does not name one: The Stack v1/dedup and
# StarCoderData (max_stars_repo_*, lang), The Stack v2 (path, language, detected_licenses /
# license_type, repo_name), codeparrot/github-code (code, license, repo_name).
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "content": ("content", "code", "text"),
    "path": ("max_stars_repo_path", "path", "file_path"),
    "language": ("lang", "language"),
    "license": ("max_stars_repo_licenses", "detected_licenses", "license", "licenses", "license_type"),
    "repository": ("max_stars_repo_name", "repo_name", "repository"),
}

NO_LICENSE = "NOASSERTION"  # SPDX's word for "not known": a kept row that lists no license

JSONL_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst")
_GLOB_CHARS = re.compile(r"[*?\[]")
# Datasets label languages their own way; the corpus' lang labels (sources.lang) spell a few differently.
_LANGUAGE_ALIASES = {"c++": "cpp", "c#": "csharp", "f#": "fsharp", "objective-c": "objc"}
_BARE_GNU = re.compile(r"(?:A?GPL|LGPL|GFDL)-\d\.\d\Z", re.IGNORECASE)
_BATCH_ROWS = 512  # Parquet rows decoded at once: bounded memory however large a row group is
_CHUNK = 1 << 20


def language_label(label: str) -> str:
    """A dataset's language label as the corpus writes it: lower case, ``C++`` -> ``cpp``."""
    low = label.strip().lower()
    return _LANGUAGE_ALIASES.get(low, low)


def license_key(license_id: str) -> str:
    """How a license id is compared with an allow-list: case-insensitive, bare GNU ids as ``-only``."""
    key = license_id.strip().lower()
    return f"{key}-only" if _BARE_GNU.match(key) else key


def read_opt_out(path: str) -> frozenset[str]:
    """The repositories of an ``exclude_repos`` file (``owner/name`` or its URL, one a line, ``#``
    comments), lower-cased (GitHub names are case-insensitive)."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CorpusError(
            f"cannot read exclude_repos file {file} ({exc.__class__.__name__}: {exc}); "
            "give a UTF-8 text file, one repository per line"
        ) from None
    names = set()
    for line in text.splitlines():
        name = line.split("#", 1)[0].strip()
        if name:
            names.add(_repo_key(name))
    return frozenset(names)


def _repo_key(name: str) -> str:
    name = re.sub(r"^[a-z]+://(?:www\.)?github\.com/", "", name.strip(), flags=re.IGNORECASE)
    return name.removesuffix(".git").strip("/").lower()


def dataset_files(spec: SourceParams) -> list[Path]:
    """The files ``spec.path`` names, sorted: the file, the folder's matching files, or the glob's."""
    assert spec.path is not None
    suffixes = (".parquet",) if spec.type == "parquet" else JSONL_SUFFIXES
    where = f"corpus source {spec.name!r}"
    given = os.path.expanduser(spec.path)
    if _GLOB_CHARS.search(given):
        found = [Path(p) for p in glob.glob(given, recursive=True) if os.path.isfile(p)]
        files = sorted(p for p in found if p.name.endswith(suffixes))
        what = f"the glob {spec.path!r}"
    elif os.path.isfile(given):
        return [Path(given)]
    elif os.path.isdir(given):
        root = Path(given)
        files = sorted(
            (p for p in root.rglob("*") if p.name.endswith(suffixes) and p.is_file()),
            key=lambda p: p.relative_to(root).as_posix(),
        )
        what = f"folder {spec.path}"
    else:
        raise CorpusError(
            f"{where}: {spec.path} does not exist; set path to a {spec.type} file, folder or glob"
        )
    if not files:
        raise CorpusError(
            f"{where}: {what} holds no {' / '.join(suffixes)} file; point path at the dataset's files"
        )
    return files


@dataclass(frozen=True)
class _Unit:
    file: int  # index into the source's files
    row_group: int  # Parquet row group; -1: a whole JSONL file
    first_row: int  # the row group's first row in its file (messages)
    rows: int  # -1: not known (JSONL)
    size: int  # bytes, for planning the fan-out


class _Columns:
    """Which column plays each role in one file (``fields`` first, then :data:`DEFAULT_COLUMNS`)."""

    def __init__(self, spec: SourceParams, file: Path, names: Sequence[str], what: str) -> None:
        mapped = spec.fields or {}
        present = set(names)
        self.roles: dict[str, str | None] = {}
        for role in DATASET_FIELDS:
            if role in mapped:
                if mapped[role] not in present:
                    raise _missing(spec, file, names, what, f"its fields maps {role} to {mapped[role]!r}")
                self.roles[role] = mapped[role]
            else:
                self.roles[role] = next((c for c in DEFAULT_COLUMNS[role] if c in present), None)
        if self.roles["content"] is None:
            raise _missing(
                spec, file, names, what, f"it has no content column ({', '.join(DEFAULT_COLUMNS['content'])})"
            )

    def needed(self) -> list[str]:
        return list(dict.fromkeys(c for c in self.roles.values() if c is not None))


def _missing(spec: SourceParams, file: Path, names: Sequence[str], what: str, why: str) -> CorpusError:
    shown = ", ".join(names) if names else "none"
    return CorpusError(
        f"corpus source {spec.name!r}: {file}{what}: {why}; its columns are: {shown}. Map them with "
        "fields: {content: COLUMN, path: ..., language: ..., license: ..., repository: ...}"
    )


class _Rows:
    """Turns one dataset row's values into a candidate, applying the source's own row filters."""

    def __init__(self, spec: SourceParams, root: Path | None) -> None:
        self.spec = spec
        self.root = root
        self.opt_out = read_opt_out(spec.exclude_repos) if spec.exclude_repos else frozenset()
        self.languages = {language_label(x) for x in spec.languages} if spec.languages is not None else None
        self.allowed = {license_key(x) for x in spec.licenses} if spec.licenses is not None else None
        self.included = compile_globs(spec.include) if spec.include != ["**"] else None
        self.excluded = compile_globs(spec.exclude) if spec.exclude else None

    def file_name(self, file: Path) -> str:
        if self.root is not None:
            return file.relative_to(self.root).as_posix()
        return file.name

    def candidate(
        self,
        file: Path,
        row: int,
        content: object,
        path: object,
        language: object,
        license: object,
        repo: object,
    ) -> Candidate:
        where = f"{file} row {row + 1}" if file.suffix == ".parquet" else f"{file} line {row + 1}"
        path_s = _text(path, where, "path")
        repo_s = _text(repo, where, "repository")
        ids = _licenses(license, where)
        expression = " AND ".join(ids) or None
        label = _text(language, where, "language")
        lang = language_label(label) if label else lang_of(path_s or "")
        if path_s and repo_s:
            key = f"{repo_s}/{path_s}"
        else:
            key = path_s or f"{self.file_name(file)}:{row}"
        fields: dict[str, str | None] = {"path": path_s, "repository": repo_s, "license": expression}
        if content is None or isinstance(content, bytes):
            data = content
        elif isinstance(content, str):
            data = _utf8(content)
        else:
            raise CorpusError(
                f"{where}: content is {type(content).__name__}, not text; map the column that holds the "
                "source text with fields: {content: COLUMN}"
            )
        size = len(data) if data is not None else 0
        reason = self.dropped(path_s, repo_s, lang, ids) or (None if data is not None else "empty")
        return Candidate(key, size, Dropped(reason) if reason else _Held(data or b""), fields, lang)

    def dropped(self, path: str | None, repo: str | None, lang: str, ids: list[str]) -> str | None:
        if self.opt_out and repo and _repo_key(repo) in self.opt_out:
            return "opted_out"
        if path is not None and (
            (self.included is not None and not self.included(path))
            or (self.excluded is not None and self.excluded(path))
        ):
            return "path_excluded"
        if self.languages is not None and lang not in self.languages:
            return "other_language"
        if self.allowed is not None and (not ids or any(license_key(i) not in self.allowed for i in ids)):
            return "license_refused"
        return None


class _Held:
    """A row's content, read with its batch (the parent hands the bytes to a cleaning worker)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __call__(self) -> bytes:
        return self.data


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (a JSON "\\ud800", or bytes that were not UTF-8)
        return text.encode("utf-8", "surrogateescape" if _escaped_only(text) else "surrogatepass")


def _escaped_only(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return False
    return True


def _text(value: object, where: str, role: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a JSONL line that was not UTF-8: records must stay valid UTF-8
            value = value.encode("utf-8", "surrogateescape" if _escaped_only(value) else "surrogatepass")
            return value.decode("utf-8", "replace") or None
        return value or None
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace") or None
    if isinstance(value, list) and role == "language" and all(isinstance(v, str) for v in value):
        return value[0] if value else None
    raise CorpusError(
        f"{where}: {role} is {type(value).__name__} {value!r:.60}, not text; fix fields: {{{role}: ...}}"
    )


def _licenses(value: object, where: str) -> list[str]:
    """A row's license ids, sorted: a list (The Stack), one id (github-code), or none."""
    if value is None:
        return []
    if isinstance(value, str):
        items: Iterable[object] = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise CorpusError(f"{where}: license is {type(value).__name__}, not a license id or a list of them")
    ids = set()
    for item in items:
        if not isinstance(item, str):
            raise CorpusError(f"{where}: license {item!r:.60} is not a license id")
        if item.strip():
            ids.add(item.strip())
    return sorted(ids)


# ------------------------------------------------------------------------------------------- parquet
def _parquet_file(path: Path) -> pq.ParquetFile:
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for a damaged or truncated file
        raise CorpusError(
            f"cannot read Parquet file {path} ({_arrow_message(exc)}); it is damaged or incomplete: download "
            "it again, or leave it out of path"
        ) from None


def _arrow_message(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]


def _text_column(spec: SourceParams, file: Path, schema: pa.Schema, column: str) -> None:
    import pyarrow as pa

    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)
            or pa.types.is_large_binary(kind)):  # fmt: skip
        raise CorpusError(
            f"corpus source {spec.name!r}: {file}: column {column!r} holds {kind}, not text; map the column "
            "that holds the source text with fields: {content: COLUMN}"
        )


def _parquet_units(spec: SourceParams, files: list[Path]) -> tuple[list[_Unit], list[_Columns]]:
    units, columns = [], []
    for index, file in enumerate(files):
        pf = _parquet_file(file)
        schema = pf.schema_arrow
        cols = _Columns(spec, file, schema.names, "")
        assert cols.roles["content"] is not None
        _text_column(spec, file, schema, cols.roles["content"])
        columns.append(cols)
        meta, first = pf.metadata, 0
        for rg in range(meta.num_row_groups):
            group = meta.row_group(rg)
            units.append(_Unit(index, rg, first, group.num_rows, max(1, group.total_byte_size)))
            first += group.num_rows
    return units, columns


def _parquet_rows(
    pf: pq.ParquetFile, file: Path, unit: _Unit, cols: _Columns
) -> Iterator[tuple[int, Sequence[Any]]]:
    """``(row in file, [content, path, language, license, repository])`` of one row group, a bounded
    batch at a time; content as bytes (a string column is cast, not decoded: non-UTF-8 stays visible)."""
    import pyarrow as pa

    needed = cols.needed()
    row = unit.first_row
    try:
        for batch in pf.iter_batches(batch_size=_BATCH_ROWS, row_groups=[unit.row_group], columns=needed):
            values = {}
            for name in needed:
                column = batch.column(name)
                if name == cols.roles["content"]:
                    large = pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type)
                    column = column.cast(pa.large_binary() if large else pa.binary())
                values[name] = column.to_pylist()
            n = batch.num_rows
            roles = [values[c] if c is not None else itertools.repeat(None, n) for c in cols.roles.values()]
            for i, fields in enumerate(zip(*roles)):  # noqa: B905 (equal lengths: one batch's columns)
                yield row + i, fields
            row += n
    except CorpusError:
        raise
    except Exception as exc:  # a damaged page: ArrowInvalid, OSError, ...
        raise CorpusError(
            f"cannot read Parquet file {file}, row group {unit.row_group} (rows {unit.first_row + 1}-"
            f"{unit.first_row + unit.rows}): {_arrow_message(exc)}; it is damaged or incomplete, download it again"
        ) from None


# --------------------------------------------------------------------------------------------- jsonl
def _chunks(path: Path) -> Iterator[bytes]:
    """The decompressed bytes of a ``.jsonl``, ``.jsonl.gz`` or ``.jsonl.zst`` file, in chunks; a
    compressed stream cut short raises ``EOFError`` (the zstd reader alone would end quietly)."""
    name = path.name
    if name.endswith(".gz"):
        with gzip.open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk
    elif name.endswith(".zst"):
        import zstandard

        with open(path, "rb") as fh:
            decompressor = zstandard.ZstdDecompressor()
            frame = None
            while raw := fh.read(_CHUNK):
                while raw:
                    if frame is None:
                        frame = decompressor.decompressobj()
                    out = frame.decompress(raw)
                    if out:
                        yield out
                    raw = b""
                    if frame.eof:  # a file may hold several frames
                        raw, frame = frame.unused_data, None
            if frame is not None:
                raise EOFError("the zstd stream ends inside a frame")
    else:
        with open(path, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                yield chunk


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """``(line index, line)`` of a JSONL file, blank lines left out."""
    import zstandard

    number, rest = 0, b""
    try:
        for chunk in _chunks(path):
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            for line in parts:
                if line.strip():
                    yield number, line
                number += 1
    except (EOFError, OSError, zlib.error, zstandard.ZstdError) as exc:
        raise CorpusError(
            f"cannot read {path} after line {number} ({exc.__class__.__name__}: {exc}); the file is cut "
            "short or damaged: download it again"
        ) from None
    if rest.strip():
        yield number, rest


def _parse(line: bytes, where: str) -> dict[str, Any]:
    import orjson

    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        try:  # not UTF-8 (orjson insists on it) or a lone surrogate escape: the stdlib parser keeps them
            value = json.loads(line.decode("utf-8", "surrogateescape"))
        except ValueError as exc:
            raise CorpusError(
                f"{where} is not a JSON object ({exc}); fix or remove the line (a truncated file ends so)"
            ) from None
    if not isinstance(value, dict):
        raise CorpusError(f"{where} is {type(value).__name__}, not a JSON object with a content field")
    return value


def _jsonl_rows(spec: SourceParams, file: Path) -> Iterator[tuple[int, Sequence[Any]]]:
    cols: _Columns | None = None
    for number, line in _lines(file):
        where = f"{file} line {number + 1}"
        record = _parse(line, where)
        if cols is None:  # the first record names the file's columns
            cols = _Columns(spec, file, list(record), f" (line {number + 1})")
        content = cols.roles["content"]
        if content not in record:
            raise _missing(spec, file, list(record), f" (line {number + 1})", f"it has no {content!r} field")
        yield number, [record.get(c) if c is not None else None for c in cols.roles.values()]


# ---------------------------------------------------------------------------------------------- open
class _Dataset:
    def __init__(self, spec: SourceParams) -> None:
        self.spec = spec
        self.files = dataset_files(spec)
        given = os.path.expanduser(spec.path or "")
        root = Path(given) if os.path.isdir(given) and not _GLOB_CHARS.search(given) else None
        self.rows = _Rows(spec, root)
        if spec.type == "parquet":
            self.units, self.columns = _parquet_units(spec, self.files)
        else:
            self.units = [_Unit(i, -1, 0, -1, max(1, f.stat().st_size)) for i, f in enumerate(self.files)]
            self.columns = []

    def select(self, lo: int, hi: int) -> Iterator[Candidate]:
        opened: tuple[int, pq.ParquetFile] | None = None  # consecutive row groups share one open file
        for unit in self.units[lo:hi]:
            file = self.files[unit.file]
            if self.spec.type == "parquet":
                if opened is None or opened[0] != unit.file:
                    opened = (unit.file, _parquet_file(file))
                rows = _parquet_rows(opened[1], file, unit, self.columns[unit.file])
            else:
                rows = _jsonl_rows(self.spec, file)
            for row, (content, path, language, license, repo) in rows:
                yield self.rows.candidate(file, row, content, path, language, license, repo)

    def count(self) -> int | None:
        return sum(u.rows for u in self.units) if self.spec.type == "parquet" else None


@contextlib.contextmanager
def open_dataset(params: SourceParams) -> Iterator[OpenedSource]:
    dataset = _Dataset(params)
    n = len(dataset.files)
    yield OpenedSource(
        f"{params.type}:{params.path}",
        f"{params.type} dataset {params.path} ({n} file{'' if n == 1 else 's'})",
        dataset.select(0, len(dataset.units)),
        dataset.count(),
        units=[u.size for u in dataset.units],
        select=dataset.select,
    )
