"""Several sources in one corpus, and the git-history source, on real folders and real git repositories."""

from __future__ import annotations

import json
import subprocess
from functools import partial
from pathlib import Path

import pytest

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.data.corpus.params import CorpusParams, SplitParams
from gitnetic.data.corpus.sources.lang import lang_of
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stage import collect_corpus
from gitnetic.data.jsonl import iter_jsonl
from tests import helpers
from tests.helpers import write_tree

# Commits by an author whose name and email the corpus must not leak.
git = partial(helpers.git, name="Ann Author", email="ann@corp.example")


def commit(
    repo: Path, message: str, files: dict[str, str | bytes] | None = None, rm: tuple[str, ...] = ()
) -> str:
    write_tree(repo, files or {})
    for rel in rm:
        git(repo, "rm", "-q", rel)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD").strip()


def all_records(out: Path) -> list[dict]:
    return [{**rec, "split": split} for split in SPLITS for rec in iter_jsonl(out / f"{split}.jsonl")]


def code(name: str, n: int = 12) -> str:
    """A distinct, ordinary Python module (passes every quality filter, shares no 5-gram with others)."""
    lines = [f'"""Module {name}: helpers number {n}."""', ""]
    for i in range(n):
        lines += [
            f"def {name}_func_{i}(value_{i}, other_{name}):",
            f"    return value_{i} * {i + 7} + other_{name}",
            "",
        ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------------- several sources
@pytest.fixture
def history_repo(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A repository with known commits: plain, binary, rename, huge diff, a merge, a lock file."""
    repo = tmp_path / "hist"
    repo.mkdir()
    git(repo, "init", "-q")
    shas = {}
    shas["first"] = commit(
        repo, "Add app\n\nThe first version.", {"app.py": "print('v1')\n", "notes.txt": "hi\n"}
    )
    git(repo, "tag", "v1")
    shas["binary"] = commit(
        repo, "Add logo and data", {"logo.py": b"\x00\x01\x02PNG", "data.py": "DATA = 1\n"}
    )
    git(repo, "mv", "app.py", "main.py")
    shas["rename"] = commit(repo, "Rename app to main", {"main.py": "print('v1')\nprint('v2')\n"})
    shas["huge"] = commit(
        repo,
        "Generate a big table",
        {"big.py": "".join(f"T{i} = {i}\n" for i in range(5000)), "small.py": "S = 2\n"},
    )
    git(repo, "checkout", "-q", "-b", "side")
    shas["side"] = commit(repo, "Side work", {"side.py": "SIDE = True\n"})
    git(repo, "checkout", "-q", "main")
    shas["main2"] = commit(repo, "Main work", {"other.py": "OTHER = 3\n"})
    git(repo, "merge", "-q", "--no-ff", "side", "-m", "Merge side")
    shas["merge"] = git(repo, "rev-parse", "HEAD").strip()
    shas["lock"] = commit(repo, "Pin deps", {"poetry.lock": "x = 1\n", "deps.py": "DEPS = []\n"})
    return repo, shas


def history_docs(repo: Path, out: Path, **source) -> tuple[list[dict], dict]:
    src = {"name": "hist", "type": "git-history", "path": str(repo), **source}
    collect_corpus(
        CorpusParams(sources=[src], splits=SplitParams(valid_ratio=0, test_ratio=0), out_dir=str(out))
    )
    return all_records(out), json.loads((out / "stats.json").read_text())["sources"]["hist"]


def test_git_history_documents_hold_exactly_messages_and_diffs(history_repo, tmp_path: Path) -> None:
    repo, shas = history_repo
    docs, stats = history_docs(repo, tmp_path / "out", max_diff_bytes=20_000, include=["**/*.py", "*.lock"])
    by_commit = {d["commit"]: d for d in docs}
    # --no-merges by default; oldest first (stable topological order)
    expected = git(repo, "log", "--topo-order", "--reverse", "--no-merges", "--format=%H").split()
    assert [d["commit"] for d in docs] == expected
    assert expected[0] == shas["first"] and expected[-1] == shas["lock"] and len(expected) == 7
    assert shas["merge"] not in by_commit
    assert by_commit[shas["first"]]["text"] == (
        "Add app\n\nThe first version.\n\n"
        "diff --git a/app.py b/app.py\nnew file mode 100644\n--- /dev/null\n+++ b/app.py\n@@ -0,0 +1 @@\n+print('v1')\n"
    )  # notes.txt is not **/*.py; no index line; no author
    binary = by_commit[shas["binary"]]["text"]
    assert "logo.py" not in binary and "+DATA = 1" in binary
    rename = by_commit[shas["rename"]]["text"]
    assert "rename from app.py\nrename to main.py\n" in rename and "+print('v2')" in rename
    huge = by_commit[shas["huge"]]["text"]
    assert "big.py" not in huge and "+S = 2" in huge  # the file over the cap is left out whole
    lock = by_commit[shas["lock"]]["text"]
    assert "poetry.lock" not in lock and "+DEPS = []" in lock
    assert all(d["lang"] == "diff" and d["source"] == "hist" for d in docs)
    assert not any("ann@corp.example" in d["text"] or "Ann Author" in d["text"] for d in docs)
    assert stats["skipped"]["binary_diffs"] == 1
    assert stats["skipped"]["diffs_over_cap"] == 1
    assert stats["skipped"]["lock_file_diffs"] == 1
    assert stats["skipped"]["excluded_diffs"] == 1  # notes.txt
    assert stats["commit"] == git(repo, "rev-parse", "HEAD").strip()


def test_git_history_ranges_max_commits_merges_and_bare_repos(history_repo, tmp_path: Path) -> None:
    repo, shas = history_repo
    docs, _ = history_docs(repo, tmp_path / "a", rev_range="v1..main")
    assert shas["first"] not in {d["commit"] for d in docs} and shas["rename"] in {d["commit"] for d in docs}
    docs, stats = history_docs(repo, tmp_path / "b", rev="main", max_commits=2)
    newest = git(repo, "log", "--topo-order", "--no-merges", "-n", "2", "--format=%H", "main").split()
    assert [d["commit"] for d in docs] == newest[::-1] and newest[0] == shas[
        "lock"
    ]  # newest two, oldest first
    docs, _ = history_docs(repo, tmp_path / "c", no_merges=False)
    merge = next(d for d in docs if d["commit"] == shas["merge"])
    assert merge["text"].startswith("Merge side\n\n") and "+SIDE = True" in merge["text"]
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo), str(bare)], check=True)
    docs_bare, _ = history_docs(bare, tmp_path / "d")
    docs_work, _ = history_docs(repo, tmp_path / "e")
    assert [d["text"] for d in docs_bare] == [d["text"] for d in docs_work]
    with pytest.raises(CorpusError, match="not found"):
        history_docs(repo, tmp_path / "f", rev_range="v9..main")


def test_several_sources_in_one_corpus(history_repo, tmp_path: Path) -> None:
    folder = tmp_path / "folder"
    write_tree(
        folder, {"pkg/util.py": code("util"), "web/app.js": "function main(a, b) { return a + b; }\n" * 3}
    )
    repo = tmp_path / "lib"
    repo.mkdir()
    git(repo, "init", "-q")
    commit(repo, "v1", {"lib.py": code("lib")})
    git(repo, "tag", "v1")
    commit(repo, "v2", {"lib.py": code("lib") + "\n" + code("extra"), "more.py": code("more")})
    hist, _ = history_repo
    sources = [
        {"name": "folder", "type": "dir", "path": str(folder), "include": ["**/*.py", "**/*.js"]},
        {"name": "lib-v1", "type": "git", "path": str(repo), "rev": "v1"},
        {"name": "lib-v2", "type": "git", "path": str(repo), "rev": "main", "exclude": ["lib.py"]},
        {"name": "hist", "type": "git-history", "path": str(hist), "max_commits": 3},
    ]
    out = tmp_path / "out"
    stats = collect_corpus(
        CorpusParams(
            sources=sources, splits=SplitParams(valid_ratio=0.2, test_ratio=0.2, seed=3), out_dir=str(out)
        )
    )
    recs = all_records(out)
    by_source: dict[str, list[dict]] = {}
    for rec in recs:
        by_source.setdefault(rec["source"], []).append(rec)
    assert sorted(r["path"] for r in by_source["folder"]) == ["pkg/util.py", "web/app.js"]
    assert {r["path"]: r["lang"] for r in by_source["folder"]} == {
        "pkg/util.py": "python",
        "web/app.js": "javascript",
    }
    assert [r["path"] for r in by_source["lib-v1"]] == ["lib.py"]
    assert [r["path"] for r in by_source["lib-v2"]] == ["more.py"]
    assert len(by_source["hist"]) == 3 and all("commit" in r for r in by_source["hist"])
    on_disk = json.loads((out / "stats.json").read_text())
    assert list(on_disk["sources"]) == ["folder", "lib-v1", "lib-v2", "hist"]
    assert on_disk["sources"]["lib-v1"]["commit"] == git(repo, "rev-parse", "v1").strip()
    assert on_disk["sources"]["lib-v2"]["commit"] == git(repo, "rev-parse", "main").strip()
    for name, recs_of in by_source.items():
        assert on_disk["sources"][name]["documents"]["total"] == len(recs_of)
    assert on_disk["documents"]["total"] == len(recs) == stats.total_documents
    assert on_disk["languages"] == {"diff": 3, "javascript": 1, "python": 3}


def test_single_source_params_still_work_and_sources_are_validated(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    write_tree(folder, {"a.py": code("a")})
    collect_corpus(
        CorpusParams(
            source="dir",
            path=str(folder),
            splits=SplitParams(valid_ratio=0, test_ratio=0),
            out_dir=str(tmp_path / "o"),
        )
    )
    (rec,) = all_records(tmp_path / "o")
    assert rec["source"] == f"dir:{folder}" and rec["path"] == "a.py" and rec["lang"] == "python"
    with pytest.raises(ConfigError, match="unique"):
        CorpusParams(sources=[{"name": "x", "type": "stdlib"}, {"name": "x", "type": "stdlib"}])
    with pytest.raises(ConfigError, match="unknown key"):
        CorpusParams(sources=[{"name": "x", "type": "dir", "path": "p", "revv": "HEAD"}])
    with pytest.raises(ConfigError, match="needs a path"):
        CorpusParams(sources=[{"name": "x", "type": "git"}])
    with pytest.raises(ConfigError, match="not both"):
        CorpusParams(source="dir", path="p", sources=[{"name": "x", "type": "stdlib"}])
    with pytest.raises(ConfigError, match="name must be"):
        CorpusParams(sources=[{"name": "a/b", "type": "stdlib"}])


@pytest.mark.parametrize(
    ("path", "lang"),
    [("a/b.py", "python"), ("x.TS", "typescript"), ("m.h", "c"), ("k.hpp", "cpp"), ("Makefile", "make"),
     ("r.rs", "rust"), ("g.go", "go"), ("s.sh", "shell"), ("c.yml", "yaml"), ("d.json", "json"), ("z.xyz", "other")],
)  # fmt: skip
def test_lang_table(path: str, lang: str) -> None:
    assert lang_of(path) == lang


def test_every_source_gets_every_split_for_by_source_prefixes(tmp_path: Path) -> None:
    """The small-corpus floor holds per source: at 3% / 5% a 6-file source would usually draw no valid or
    test file, and its {split}-{source} prefix would be empty; each source with >= 3 documents gets one."""
    for name in ("big", "small"):
        write_tree(
            tmp_path / name, {f"m{i}.py": code(f"{name}{i}") for i in range(40 if name == "big" else 6)}
        )
    sources = [{"name": n, "type": "dir", "path": str(tmp_path / n)} for n in ("big", "small")]
    sources.append({"name": "tiny", "type": "dir", "path": str(tmp_path / "small"), "include": ["m0.py"]})
    out = tmp_path / "out"
    stats = collect_corpus(
        CorpusParams(sources=sources, splits=SplitParams(valid_ratio=0.03, test_ratio=0.05), out_dir=str(out))
    )
    on_disk = json.loads((out / "stats.json").read_text())["sources"]
    for name in ("big", "small"):
        assert all(on_disk[name]["documents"][s] for s in SPLITS), (name, on_disk[name]["documents"])
    # "tiny" holds one file, an exact duplicate of small/m0.py: dropped, the source stays empty (no error)
    assert on_disk["tiny"]["documents"]["total"] == 0 and on_disk["tiny"]["skipped"]["duplicate"] == 1
    recs = all_records(out)
    for split in SPLITS:
        for name in ("big", "small"):
            assert on_disk[name]["documents"][split] == sum(
                r["split"] == split and r["source"] == name for r in recs
            )
    assert stats.total_documents == len(recs) == 46
    # the same sources one at a time: the floor is the corpus-wide one, as before
    single = collect_corpus(
        CorpusParams(source="dir", path=str(tmp_path / "small"), splits=SplitParams(valid_ratio=0.03, test_ratio=0.05),
                     out_dir=str(tmp_path / "one"))
    )  # fmt: skip
    assert all(single.documents[s] for s in SPLITS)
