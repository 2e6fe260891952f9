"""Corpus stage on real folders, real git repositories and the real stdlib (all small)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.data.corpus.params import CorpusParams, SplitParams
from gitnetic.data.corpus.sources.globs import compile_globs
from gitnetic.data.corpus.splits import SPLITS, assign_split
from gitnetic.data.corpus.stage import collect_corpus
from gitnetic.data.jsonl import iter_jsonl
from tests.helpers import git, write_tree


def records(out_dir: Path) -> dict[str, dict]:
    """path -> record (with its split added), over all three splits."""
    found = {}
    for split in SPLITS:
        for rec in iter_jsonl(out_dir / f"{split}.jsonl"):
            assert set(rec) == {"text", "path", "source", "lang"}
            found[rec["path"]] = {**rec, "split": split}
    return found


def run_dir(src: Path, out: Path, **kwargs) -> tuple:
    stats = collect_corpus(CorpusParams(source="dir", path=str(src), out_dir=str(out), **kwargs))
    return stats, records(out)


# ------------------------------------------------------------------------------------------- globs
@pytest.mark.parametrize(
    ("pattern", "path", "expected"),
    [
        ("**/*.py", "a.py", True),
        ("**/*.py", "a/b/c.py", True),
        ("**/*.py", "a/b/c.pyc", False),
        ("*.py", "deep/down/x.py", True),  # no '/': matches the name at any depth
        ("pkg/*.py", "pkg/x.py", True),
        ("pkg/*.py", "pkg/sub/x.py", False),  # '*' stays within one folder
        ("test/**", "test/a/b.py", True),
        ("test/**", "mytest/a.py", False),
        ("**/tests/**", "src/tests/t.py", True),
        ("test_?.py", "test_1.py", True),
        ("[!a]*.py", "a.py", False),
    ],
)
def test_glob_semantics(pattern: str, path: str, expected: bool) -> None:
    assert compile_globs([pattern])(path) is expected


# --------------------------------------------------------------------------------------- dir source
def test_dir_source_keeps_matching_files_verbatim(
    tiny_corpus_dir: Path, tiny_corpus_files: dict[str, bytes], tmp_path: Path
) -> None:
    stats, recs = run_dir(
        tiny_corpus_dir,
        tmp_path / "out",
        exclude=["tests/**"],
        splits=SplitParams(valid_ratio=0, test_ratio=0),
    )
    expected = {p for p in tiny_corpus_files if p.endswith(".py") and not p.startswith("tests/")}
    assert set(recs) == expected
    for path, rec in recs.items():
        assert rec["text"].encode("utf-8") == tiny_corpus_files[path]  # CRLF, tabs, unicode untouched
        assert rec["source"] == f"dir:{tiny_corpus_dir}"
    assert "\r\n" in recs["textutil/windows_lines.py"]["text"]
    assert "\t\treturn" in recs["geometry/shapes.py"]["text"]
    assert stats.documents == {"train": len(expected), "valid": 0, "test": 0}
    assert stats.total_bytes == sum(len(tiny_corpus_files[p]) for p in expected)


def test_dir_source_include_patterns(tiny_corpus_dir: Path, tmp_path: Path) -> None:
    _, recs = run_dir(
        tiny_corpus_dir, tmp_path / "md", include=["*.md"], splits=SplitParams(valid_ratio=0, test_ratio=0)
    )
    assert set(recs) == {"README.md"}
    _, recs = run_dir(tiny_corpus_dir, tmp_path / "geo", include=["geometry/*.py", "scripts/f*.py"])
    assert set(recs) == {"geometry/__init__.py", "geometry/point.py", "geometry/shapes.py", "scripts/fib.py"}


def test_skips_binary_non_utf8_too_large_empty_and_duplicates(tmp_path: Path) -> None:
    good = b"def f():\n    return 1\n"
    src = write_tree(
        tmp_path / "src",
        {
            "a_good.py": good,
            "b_copy.py": good,  # exact duplicate of a_good.py: first in sorted order wins
            "binary.py": b"x = 1\n\x00\x01\x02",
            "latin1.py": "s = 'caf\u00e9'\n".encode("latin-1"),
            "big.py": b"x = 1\n" * 100,
            "empty/__init__.py": b"",
            "blank.py": b"\n\n  \n",
            "utf8_bom.py": b"\xef\xbb\xbfprint('bom kept')\r\n",
        },
    )
    out = tmp_path / "out"
    stats, recs = run_dir(src, out, max_file_bytes=200, splits=SplitParams(valid_ratio=0, test_ratio=0))
    assert set(recs) == {"a_good.py", "utf8_bom.py"}
    assert recs["utf8_bom.py"]["text"] == "\ufeffprint('bom kept')\r\n"
    assert stats.skipped == {
        "binary": 1,
        "non_utf8": 1,
        "too_large": 1,
        "duplicate": 1,
        "near_duplicate": 0,
        "empty": 2,
        "unreadable": 0,
    }
    on_disk = json.loads((out / "stats.json").read_text())
    assert on_disk["skipped"] == stats.skipped
    assert on_disk["documents"] == {"train": 2, "valid": 0, "test": 0, "total": 2}
    assert on_disk["files_matched"] == 8


def test_max_files_and_max_bytes_caps_take_a_sorted_prefix(tmp_path: Path) -> None:
    src = write_tree(tmp_path / "src", {f"m{i:02d}.py": f"x = {i}\n".encode() * 10 for i in range(10)})
    stats, recs = run_dir(src, tmp_path / "files", max_files=3)
    assert set(recs) == {"m00.py", "m01.py", "m02.py"}
    assert (stats.stopped_by, stats.files_not_collected) == ("max_files", 7)
    stats, recs = run_dir(src, tmp_path / "bytes", max_bytes=250)  # each file is 60 bytes
    assert set(recs) == {"m00.py", "m01.py", "m02.py", "m03.py"}
    assert stats.stopped_by == "max_bytes" and stats.total_bytes == 240


# ------------------------------------------------------------------------------------------- splits
def test_split_is_deterministic_and_independent_of_other_files(
    tiny_corpus_files: dict[str, bytes], tmp_path: Path
) -> None:
    many = {f"pkg/mod_{i:03d}.py": f"VALUE = {i}\n".encode() for i in range(60)}
    src = write_tree(tmp_path / "src", {**tiny_corpus_files, **many})
    kwargs = {"splits": SplitParams(valid_ratio=0.2, test_ratio=0.2, seed=7)}
    run_dir(src, tmp_path / "a", **kwargs)
    _, first = run_dir(src, tmp_path / "b", **kwargs)
    for name in (f"{s}.jsonl" for s in SPLITS):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    stats_a, stats_b = (json.loads((tmp_path / d / "stats.json").read_text()) for d in "ab")
    assert stats_a.pop("out_dir") != stats_b.pop("out_dir") and stats_a == stats_b
    assert {r["split"] for r in first.values()} == set(SPLITS)

    (src / "pkg" / "mod_007.py").unlink()
    write_tree(src, {f"new/extra_{i}.py": f"EXTRA = {i}\n".encode() for i in range(20)})
    _, second = run_dir(src, tmp_path / "c", **kwargs)
    for path, rec in second.items():
        if path in first:
            assert rec["split"] == first[path]["split"], path

    _, reseeded = run_dir(src, tmp_path / "d", splits=SplitParams(valid_ratio=0.2, test_ratio=0.2, seed=8))
    assert any(reseeded[p]["split"] != second[p]["split"] for p in second)


def test_assign_split_follows_the_ratios() -> None:
    splits = [assign_split(f"src/file_{i}.py", 0.1, 0.05, seed=0) for i in range(4000)]
    assert 300 < splits.count("valid") < 500
    assert 120 < splits.count("test") < 280
    assert splits == [assign_split(f"src/file_{i}.py", 0.1, 0.05, seed=0) for i in range(4000)]


def test_train_split_must_not_be_empty(tmp_path: Path) -> None:
    path = next(f"only_{i}.py" for i in range(100) if assign_split(f"only_{i}.py", 0.5, 0.4) != "train")
    src = write_tree(tmp_path / "src", {path: b"x = 1\n"})
    with pytest.raises(CorpusError, match=r"only 1 document collected.*valid_ratio 0\.5, test_ratio 0\.4"):
        run_dir(src, tmp_path / "out", splits=SplitParams(valid_ratio=0.5, test_ratio=0.4))
    assert not (tmp_path / "out" / "valid.jsonl").exists()


# --------------------------------------------------------------------------------------- git source
def test_git_source_reads_each_revision_without_checkout(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    write_tree(
        repo, {"a.py": b"A = 1\r\n", "lib/b.py": b"def b():\n\treturn 2\n", "notes.txt": b"not code\n"}
    )
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "first")
    git(repo, "tag", "v1")
    write_tree(repo, {"a.py": b"A = 2\n", "c.py": b"C = 3\n", "big.py": b"# pad\n" * 50})
    (repo / "lib" / "b.py").unlink()
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "second")
    write_tree(repo, {"uncommitted.py": b"U = 0\n", "a.py": b"A = 'dirty work tree'\n"})
    head, v1 = git(repo, "rev-parse", "HEAD").strip(), git(repo, "rev-parse", "v1").strip()

    def collect(rev: str, out: str) -> tuple:
        params = CorpusParams(
            source="git", path=str(repo), rev=rev, out_dir=str(tmp_path / out), max_file_bytes=100,
            splits=SplitParams(valid_ratio=0, test_ratio=0),
        )  # fmt: skip
        return collect_corpus(params), records(tmp_path / out)

    stats, old = collect("v1", "old")
    assert {p: r["text"] for p, r in old.items()} == {
        "a.py": "A = 1\r\n",
        "lib/b.py": "def b():\n\treturn 2\n",
    }
    assert old["a.py"]["source"] == f"git:{repo}@{v1}"
    stats, new = collect("HEAD", "new")
    assert {p: r["text"] for p, r in new.items()} == {"a.py": "A = 2\n", "c.py": "C = 3\n"}
    assert new["c.py"]["source"] == f"git:{repo}@{head}"
    assert stats.skipped["too_large"] == 1  # big.py, judged by the blob size before reading it
    _, by_sha = collect(v1[:10], "sha")
    assert set(by_sha) == set(old)
    sub = collect_corpus(
        CorpusParams(
            source="git",
            path=str(repo / "lib"),
            rev="v1",
            out_dir=str(tmp_path / "sub"),
            splits=SplitParams(valid_ratio=0, test_ratio=0),
        )
    )
    assert sub.total_documents == 1 and set(records(tmp_path / "sub")) == {
        "b.py"
    }  # a sub-folder reads its sub-tree


def test_git_source_errors_are_one_line(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(CorpusError, match="is not a git repository") as err:
        collect_corpus(CorpusParams(source="git", path=str(plain), out_dir=str(tmp_path / "o")))
    assert "\n" not in str(err.value)
    git(plain, "init", "-q")
    write_tree(plain, {"x.py": b"x = 1\n"})
    git(plain, "add", ".")
    git(plain, "commit", "-q", "-m", "x")
    with pytest.raises(CorpusError, match="revision 'no-such-branch' not found") as err:
        collect_corpus(
            CorpusParams(source="git", path=str(plain), rev="no-such-branch", out_dir=str(tmp_path / "o"))
        )
    assert "\n" not in str(err.value)
    with pytest.raises(CorpusError, match="does not exist"):
        collect_corpus(
            CorpusParams(source="git", path=str(tmp_path / "missing"), out_dir=str(tmp_path / "o"))
        )


# ------------------------------------------------------------------------------------ other errors
def test_empty_corpus_names_source_and_patterns(tiny_corpus_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(CorpusError) as err:
        run_dir(tiny_corpus_dir, tmp_path / "out", include=["**/*.rs"])
    msg = str(err.value)
    assert str(tiny_corpus_dir) in msg and "**/*.rs" in msg and "\n" not in msg
    assert not (tmp_path / "out" / "train.jsonl").exists()  # nothing half-written is left behind


def test_missing_folder_is_a_corpus_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="does not exist"):
        run_dir(tmp_path / "nope", tmp_path / "out")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"source": "dir"},
        {"splits": {"valid_ratio": 0.6, "test_ratio": 0.4}},
        {"splits": {"test_ratio": -0.1}},
        {"max_bytes": -1},
        {"include": []},
    ],
)
def test_bad_params_are_config_errors(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CorpusParams(**kwargs)


# ---------------------------------------------------------------------------------------- stdlib
def test_stdlib_source_with_a_small_cap(tmp_path: Path) -> None:
    stats = collect_corpus(CorpusParams(out_dir=str(tmp_path), max_files=12, exclude=["test/**"]))
    recs = records(tmp_path)
    assert stats.total_documents == len(recs) == 12
    assert stats.stopped_by == "max_files" and stats.files_not_collected > 0
    assert all(r["source"].startswith("stdlib:python3.") for r in recs.values())
    assert all(p.endswith(".py") and not p.startswith(("/", "site-packages/", "test/")) for p in recs)
    assert "__future__.py" in recs  # sorted order: the cap keeps a deterministic prefix
