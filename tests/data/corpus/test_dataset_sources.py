"""Parquet and JSONL dataset sources (The Stack v1, The Stack v2, github-code schemas) on real code: columns
read as they are, row filters and their counts, licenses on record, byte-identity across workers and
fan-out parts, and every kind of bad input ending in one line with nothing left under the output names."""

from __future__ import annotations

import gzip
import json
import shutil
import sysconfig
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stage import collect_corpus, run_corpus
from gitnetic.data.jsonl import iter_jsonl
from tests.helpers.corpora import mixed_tree, module

STDLIB = Path(sysconfig.get_paths()["stdlib"])
OUTPUTS = [f"{split}.jsonl" for split in SPLITS] + ["stats.json"]
ONE_SPLIT = {"valid_ratio": 0, "test_ratio": 0}
PACKAGES = ("email", "http", "importlib", "json", "logging", "urllib")


def stdlib_files() -> list[Path]:
    """Real code: a few stdlib packages (ordinary modules that pass the quality filters)."""
    return sorted(f for pkg in PACKAGES for f in STDLIB.glob(f"{pkg}/*.py"))


def stack_v1(files: list[Path], repos: int = 4) -> list[dict[str, Any]]:
    """Rows in The Stack v1/dedup schema; file i is in repository i % repos, licensed per repository."""
    licenses = [["MIT"], ["Apache-2.0", "MIT"], ["GPL-3.0"], []]
    return [
        {
            "hexsha": f"{i:040x}",
            "size": f.stat().st_size,
            "content": f.read_text(encoding="utf-8"),
            "max_stars_repo_path": f.relative_to(STDLIB).as_posix(),
            "max_stars_repo_name": f"org/repo{i % repos}",
            "max_stars_repo_licenses": licenses[i % repos % len(licenses)],
            "max_stars_count": i,
            "lang": "Python",
        }
        for i, f in enumerate(files)
    ]


def stack_v2(files: list[Path]) -> list[dict[str, Any]]:
    return [
        {
            "blob_id": f"{i:040x}",
            "repo_name": f"team/project{i % 2}",
            "path": f"/{f.relative_to(STDLIB).as_posix()}",
            "language": "Python",
            "detected_licenses": ["MIT"] if i % 2 else [],
            "license_type": "permissive" if i % 2 else "no_license",
            "content": f.read_text(encoding="utf-8"),
        }
        for i, f in enumerate(files)
    ]


def github_code(files: list[Path]) -> list[dict[str, Any]]:
    return [
        {
            "code": f.read_text(encoding="utf-8"),
            "repo_name": f"someone/lib{i % 3}",
            "path": f.relative_to(STDLIB).as_posix(),
            "language": "Python" if i % 4 else "C++",
            "license": ("mit", "apache-2.0", "gpl-3.0")[i % 3],
            "size": f.stat().st_size,
        }
        for i, f in enumerate(files)
    ]


def write_parquet(path: Path, rows: list[dict[str, Any]], row_group_size: int = 8) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=row_group_size)
    return path


def jsonl_bytes(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(row) + b"\n" for row in rows)


def write_jsonl(path: Path, rows: list[dict[str, Any]] | bytes) -> Path:
    data = rows if isinstance(rows, bytes) else jsonl_bytes(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    elif path.name.endswith(".zst"):  # two frames, split mid-line: read across frames
        half, zstd = len(data) // 2, zstandard.ZstdCompressor()
        data = zstd.compress(data[:half]) + zstd.compress(data[half:])
    path.write_bytes(data)
    return path


def corpus(tmp_path: Path, *sources: dict[str, Any], out: str = "out", **kw: Any) -> CorpusParams:
    return CorpusParams(
        sources=list(sources), out_dir=str(tmp_path / out), num_workers=kw.pop("workers", 1), **kw
    )


def records(out: Path) -> list[dict[str, Any]]:
    return [rec for split in SPLITS for rec in iter_jsonl(out / f"{split}.jsonl")]


def outputs(out: Path) -> dict[str, bytes]:
    return {name: (out / name).read_bytes() for name in OUTPUTS}


# ------------------------------------------------------------------------------------------- schemas
@pytest.mark.parametrize("schema", ["stack_v1", "stack_v2", "github_code"])
def test_known_schemas_read_as_they_are(tmp_path: Path, schema: str) -> None:
    files = stdlib_files()[:12]
    rows = {"stack_v1": stack_v1, "stack_v2": stack_v2, "github_code": github_code}[schema](files)
    write_parquet(tmp_path / "data" / "train-00000-of-00001.parquet", rows)
    stats = collect_corpus(
        corpus(
            tmp_path,
            {"name": "ds", "type": "parquet", "path": str(tmp_path / "data")},
            redact={"secrets": False, "emails": False},
        )
    )
    got = records(tmp_path / "out")
    texts = {f.read_text(encoding="utf-8") for f in files}
    assert stats.total_documents == len(got) > 0
    assert {rec["text"] for rec in got} <= texts  # the files themselves, byte for byte
    first = min(got, key=lambda r: r["path"])
    assert set(first) == {"text", "path", "repository", "license", "source", "lang"}
    assert first["repository"] and first["path"].lstrip("/").split("/")[0] in PACKAGES
    assert first["source"] == "ds"
    assert {rec["lang"] for rec in got} <= {"python", "cpp"}
    src = stats.sources["ds"]
    assert src.files_matched == len(files)
    assert sum(src.licenses.values()) >= len(got)  # every kept row's licenses are counted
    assert stats.licenses["ds"] == " AND ".join(sorted(src.licenses))


def test_jsonl_plain_gz_zst_and_parquet_give_the_same_corpus(tmp_path: Path) -> None:
    rows = stack_v1(stdlib_files()[:20])
    write_parquet(tmp_path / "pq" / "a.parquet", rows[:11], row_group_size=4)
    write_parquet(tmp_path / "pq" / "b.parquet", rows[11:], row_group_size=4)
    write_jsonl(tmp_path / "plain" / "a.jsonl", rows[:11])
    write_jsonl(tmp_path / "plain" / "b.jsonl", rows[11:])
    write_jsonl(tmp_path / "gz" / "a.jsonl.gz", rows[:11])
    write_jsonl(tmp_path / "gz" / "sub" / "b.jsonl.gz", rows[11:])  # folders are read recursively
    write_jsonl(tmp_path / "zst" / "a.jsonl.zst", rows[:11])
    write_jsonl(tmp_path / "zst" / "b.jsonl.zst", rows[11:])
    (tmp_path / "zst" / "README.md").write_text("not a dataset file\n")
    results = {}
    for name, kind, path in [
        ("pq", "parquet", tmp_path / "pq"),
        ("plain", "jsonl", tmp_path / "plain" / "*.jsonl"),  # a glob
        ("gz", "jsonl", tmp_path / "gz"),
        ("zst", "jsonl", tmp_path / "zst"),
    ]:
        collect_corpus(corpus(tmp_path, {"name": "stack", "type": kind, "path": str(path)}, out=name))
        results[name] = {split: (tmp_path / name / f"{split}.jsonl").read_bytes() for split in SPLITS}
    assert results["pq"]["train"]
    for name in ("plain", "gz", "zst"):
        assert results[name] == results["pq"], name


# ----------------------------------------------------------------------------------------- filters
def test_languages_licenses_and_opt_out_filter_rows_and_are_counted(tmp_path: Path) -> None:
    rows = github_code(stdlib_files()[:24])
    write_parquet(tmp_path / "gh.parquet", rows)
    opt_out = tmp_path / "opt-out.txt"
    opt_out.write_text("# repositories that asked to be removed\nhttps://github.com/Someone/Lib1\n\n")
    params = corpus(
        tmp_path,
        {
            "name": "gh",
            "type": "parquet",
            "path": str(tmp_path / "gh.parquet"),
            "languages": ["python"],
            "licenses": ["MIT", "GPL-3.0-only"],  # github-code's "gpl-3.0" is the bare id: -only
            "exclude_repos": str(opt_out),
        },
        neardup={"enabled": False},
    )
    stats = collect_corpus(params)
    got = records(tmp_path / "out")
    opted = sum(r["repo_name"] == "someone/lib1" for r in rows)
    left = [r for r in rows if r["repo_name"] != "someone/lib1"]
    other = sum(r["language"] != "Python" for r in left)
    refused = sum(r["language"] == "Python" and r["license"] == "apache-2.0" for r in left)
    skipped = stats.sources["gh"].skipped
    assert (skipped["opted_out"], skipped["other_language"], skipped["license_refused"]) == (
        opted,
        other,
        refused,
    )
    assert opted and other  # the data exercises each filter (lib1 carries every apache-2.0 row)
    assert {r["repository"] for r in got} <= {"someone/lib0", "someone/lib2"}
    assert {r["lang"] for r in got} == {"python"}
    assert {r["license"] for r in got} == {"mit", "gpl-3.0"}
    kept = (
        len(got)
        + sum(skipped[k] for k in ("duplicate", "near_duplicate"))
        + sum(stats.sources["gh"].filtered.values())
    )
    assert kept == len(rows) - opted - other - refused
    saved = json.loads((tmp_path / "out" / "stats.json").read_text())
    assert saved["sources"]["gh"]["skipped"]["opted_out"] == opted
    assert saved["sources"]["gh"]["licenses"] == {
        "gpl-3.0": sum(r["license"] == "gpl-3.0" for r in got),
        "mit": sum(r["license"] == "mit" for r in got),
    }
    assert saved["licenses"] == {"gh": "gpl-3.0 AND mit"}


def test_rows_without_a_license_are_refused_by_an_allow_list_and_noted_without_one(tmp_path: Path) -> None:
    rows = stack_v2(stdlib_files()[:10])  # even rows: detected_licenses []
    write_jsonl(tmp_path / "v2.jsonl.gz", rows)
    spec = {"name": "v2", "type": "jsonl", "path": str(tmp_path / "v2.jsonl.gz")}
    open_stats = collect_corpus(corpus(tmp_path, spec, out="open"))
    assert open_stats.sources["v2"].licenses["NOASSERTION"] > 0
    assert open_stats.licenses["v2"] == "MIT AND NOASSERTION"
    stats = collect_corpus(corpus(tmp_path, {**spec, "licenses": ["MIT"]}, out="mit"))
    assert stats.sources["v2"].skipped["license_refused"] == 5
    assert stats.licenses["v2"] == "MIT"
    assert {r["license"] for r in records(tmp_path / "mit")} == {"MIT"}

    from gitnetic.inference.export import corpus_licenses  # what export writes to licenses.json

    assert corpus_licenses(str(tmp_path / "mit" / "stats.json")) == {"v2": "MIT"}


def test_field_mapping_and_path_globs(tmp_path: Path) -> None:
    rows = [
        {
            "text": module(f"m{i}"),
            "file": f"pkg/{'tests/' if i % 3 == 0 else ''}m{i}.py",
            "owner_repo": "me/x",
        }
        for i in range(9)
    ]
    write_jsonl(tmp_path / "own.jsonl", rows)
    spec = {
        "name": "own",
        "type": "jsonl",
        "path": str(tmp_path / "own.jsonl"),
        "fields": {"content": "text", "path": "file", "repository": "owner_repo"},
        "exclude": ["**/tests/**"],
    }
    stats = collect_corpus(corpus(tmp_path, spec))
    got = records(tmp_path / "out")
    assert sorted(r["path"] for r in got) == sorted(r["file"] for r in rows if "tests/" not in r["file"])
    assert stats.sources["own"].skipped["path_excluded"] == 3
    assert {r["lang"] for r in got} == {"python"}  # no language column: from the path
    assert {r["license"] for r in got} == {None}


def test_dataset_only_keys_and_unknown_roles_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="languages is for types parquet and jsonl only"):
        corpus(tmp_path, {"name": "d", "type": "dir", "path": str(tmp_path), "languages": ["python"]})
    with pytest.raises(ConfigError, match=r"unknown role\(s\) \['body'\]"):
        corpus(tmp_path, {"name": "d", "type": "jsonl", "path": str(tmp_path), "fields": {"body": "x"}})


# -------------------------------------------------------------------------------- byte-identity
def fan_out(params: CorpusParams, count: int) -> dict[str, bytes]:
    """The Snakemake fan-out's jobs (sign each part, decide, write each split), run in this process."""
    params.parts.count = count
    for index in range(count):
        run_corpus(params, CorpusJobParams(job="sign", part_index=index))
    run_corpus(params, CorpusJobParams(job="decide"))
    for split in SPLITS:
        run_corpus(params, CorpusJobParams(job="write", split=split))
    return outputs(Path(params.out_dir))


def test_outputs_are_byte_identical_across_workers_and_fan_out_parts(tmp_path: Path) -> None:
    everything = stdlib_files()
    files = everything[:30]
    rows = stack_v1(files)
    # Two copies of the dataset's rows under other repository names: duplicates across files.
    copies = [{**r, "max_stars_repo_name": r["max_stars_repo_name"] + "-fork"} for r in rows[:12]]
    write_parquet(tmp_path / "stack" / "train-00000-of-00002.parquet", rows[:18], row_group_size=5)
    write_parquet(tmp_path / "stack" / "train-00001-of-00002.parquet", rows[18:] + copies, row_group_size=5)
    write_jsonl(tmp_path / "gh" / "part-0.jsonl.zst", github_code(everything[25:38]))  # 5 already seen
    write_jsonl(tmp_path / "gh" / "part-1.jsonl.gz", github_code(everything[38:50]))
    sources = [
        {"name": "code", "type": "dir", "path": str(mixed_tree(tmp_path / "tree")), "max_files": 8},
        {"name": "stack", "type": "parquet", "path": str(tmp_path / "stack"), "languages": ["Python"]},
        {"name": "gh", "type": "jsonl", "path": str(tmp_path / "gh"), "max_files": 12},
    ]
    one = collect_corpus(corpus(tmp_path, *sources))  # stats.json names out_dir: the same for all
    assert one.sources["stack"].skipped["duplicate"] > 0 and one.sources["gh"].stopped_by == "max_files"
    expected = outputs(tmp_path / "out")
    shutil.rmtree(tmp_path / "out")
    collect_corpus(corpus(tmp_path, *sources, workers=2))
    assert outputs(tmp_path / "out") == expected
    for count in (1, 3):
        shutil.rmtree(tmp_path / "out")
        assert fan_out(corpus(tmp_path, *sources), count) == expected, count


# ------------------------------------------------------------------------------------- bad input
def fails(tmp_path: Path, spec: dict[str, Any], match: str) -> None:
    """The stage stops with one line matching ``match`` and leaves nothing under its output names."""
    params = corpus(tmp_path, spec)
    with pytest.raises(CorpusError, match=match) as info:
        collect_corpus(params)
    assert "\n" not in str(info.value)
    out = Path(params.out_dir)
    assert not [name for name in OUTPUTS if (out / name).exists()]


def test_truncated_and_damaged_parquet_files_stop_the_stage(tmp_path: Path) -> None:
    rows = stack_v1(stdlib_files()[:16])
    good = write_parquet(tmp_path / "good.parquet", rows, row_group_size=4).read_bytes()
    cut = tmp_path / "cut" / "x.parquet"
    cut.parent.mkdir()
    cut.write_bytes(good[: len(good) // 2])
    fails(
        tmp_path,
        {"name": "s", "type": "parquet", "path": str(cut.parent)},
        r"cut/x.parquet .*damaged or incomplete",
    )
    # A damaged data page (footer intact): the error names the row group and its rows.
    meta = pq.ParquetFile(tmp_path / "good.parquet").metadata.row_group(2).column(2)
    start = meta.data_page_offset
    broken = bytearray(good)
    broken[start + 10 : start + 400] = b"\xff" * 390
    bad = tmp_path / "bad" / "x.parquet"
    bad.parent.mkdir()
    bad.write_bytes(bytes(broken))
    fails(
        tmp_path,
        {"name": "s", "type": "parquet", "path": str(bad)},
        r"bad/x.parquet, row group 2 \(rows 9-12\)",
    )


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_a_compressed_stream_cut_short_stops_the_stage(tmp_path: Path, suffix: str) -> None:
    whole = write_jsonl(tmp_path / f"whole{suffix}", stack_v1(stdlib_files()[:16])).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    fails(
        tmp_path, {"name": "s", "type": "jsonl", "path": str(cut)}, rf"cut{suffix} after line \d+ .*cut short"
    )


def test_bad_rows_stop_the_stage_naming_file_and_line(tmp_path: Path) -> None:
    rows = stack_v1(stdlib_files()[:4])
    lines = jsonl_bytes(rows)
    cases = {
        "truncated.jsonl": (lines[:-40], r"truncated.jsonl line 4 is not a JSON object"),
        "number.jsonl": (
            lines + orjson.dumps({**rows[0], "content": 42}) + b"\n",
            r"number.jsonl line 5: content is int",
        ),
        "array.jsonl": (lines + b"[1, 2]\n", r"array.jsonl line 5 is list, not a JSON object"),
        "nocontent.jsonl": (
            orjson.dumps({"path": "a.py", "body": "x"}) + b"\n",
            r"no content column .*columns are: path, body",
        ),
    }
    for name, (data, match) in cases.items():
        write_jsonl(tmp_path / name, data)
        fails(tmp_path, {"name": "s", "type": "jsonl", "path": str(tmp_path / name)}, match)
    write_parquet(tmp_path / "pq" / "nocontent.parquet", [{"path": "a.py", "body": "x"}])
    fails(
        tmp_path,
        {"name": "s", "type": "parquet", "path": str(tmp_path / "pq")},
        r"nocontent.parquet: it has no content column .*columns are: path, body",
    )
    write_parquet(tmp_path / "pq2" / "int.parquet", [{"content": 1, "path": "a.py"}])
    fails(
        tmp_path,
        {"name": "s", "type": "parquet", "path": str(tmp_path / "pq2")},
        r"int.parquet: column 'content' holds int64, not text",
    )
    fails(
        tmp_path,
        {
            "name": "s",
            "type": "jsonl",
            "path": str(tmp_path / "nocontent.jsonl"),
            "fields": {"content": "text"},
        },
        r"its fields maps content to 'text'",
    )
    fails(
        tmp_path,
        {"name": "s", "type": "parquet", "path": str(tmp_path / "nothing-*.parquet")},
        "holds no .parquet file",
    )
    fails(
        tmp_path,
        {
            "name": "s",
            "type": "jsonl",
            "path": str(tmp_path / "number.jsonl"),
            "exclude_repos": "no-such.txt",
        },
        r"cannot read exclude_repos file no-such.txt",
    )


def test_null_binary_non_utf8_and_oversized_rows_are_counted_skips(tmp_path: Path) -> None:
    rows = stack_v1(stdlib_files()[:6])
    odd = [
        {**rows[0], "max_stars_repo_path": "null.py", "content": None},
        {**rows[0], "max_stars_repo_path": "big.py", "content": "x = 1\n" * 400},
    ]
    data = jsonl_bytes(rows + odd)
    latin1 = orjson.dumps({**rows[0], "max_stars_repo_path": "latin.py", "content": "PLACEHOLDER"}) + b"\n"
    data += latin1.replace(b"PLACEHOLDER", "caf\u00e9 = 1".encode("latin-1"))  # not UTF-8
    data += orjson.dumps({**rows[0], "max_stars_repo_path": "bin.py", "content": "a\u0000b" * 10}) + b"\n"
    odd_path = orjson.dumps({**rows[0], "max_stars_repo_path": "PLACEHOLDER", "content": "ok = 1\n"}) + b"\n"
    data += odd_path.replace(b"PLACEHOLDER", "caf\u00e9.py".encode("latin-1"))  # a path not UTF-8
    write_jsonl(tmp_path / "odd.jsonl", data)
    spec = {"name": "s", "type": "jsonl", "path": str(tmp_path / "odd.jsonl"), "max_file_bytes": 2000}
    stats = collect_corpus(corpus(tmp_path, spec, out="j", splits=ONE_SPLIT))
    skipped = stats.sources["s"].skipped
    assert (skipped["empty"], skipped["non_utf8"], skipped["binary"]) == (1, 1, 1)
    assert "caf\ufffd.py" in {r["path"] for r in records(tmp_path / "j")}
    assert skipped["too_large"] == 1 + sum(len(r["content"].encode()) > 2000 for r in rows)
    # The same in Parquet, with a binary content column holding the non-UTF-8 bytes.
    table = pa.table(
        {
            "content": pa.array([b"caf\xe9 = 1\n", None, b"x = 1\n" * 400, b"ok = 1\n" * 5], pa.binary()),
            "max_stars_repo_path": ["latin.py", "null.py", "big.py", "ok.py"],
        }
    )
    pq.write_table(table, tmp_path / "odd.parquet")
    spec = {"name": "s", "type": "parquet", "path": str(tmp_path / "odd.parquet"), "max_file_bytes": 2000}
    stats = collect_corpus(corpus(tmp_path, spec, out="p", filters={"enabled": False}, splits=ONE_SPLIT))
    skipped = stats.sources["s"].skipped
    assert (skipped["non_utf8"], skipped["empty"], skipped["too_large"], stats.total_documents) == (
        1,
        1,
        1,
        1,
    )
