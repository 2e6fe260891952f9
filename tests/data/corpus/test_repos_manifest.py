"""``type: repos``: a manifest of repositories (local paths, ``file://`` URLs, revisions, names), fetched
into a cache once and read at their commits; per-repository commits and licenses in stats.json; bad
manifests; the fan-out byte-identical to one job. No network: every repository is built here."""

from __future__ import annotations

import json
import logging
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gitnetic.common.errors import ConfigError, CorpusError
from gitnetic.data.corpus.licenses import source_license
from gitnetic.data.corpus.params import CorpusJobParams, CorpusParams, PartsParams, SplitParams
from gitnetic.data.corpus.sources.fetch import FetchFailed, fetch_repository
from gitnetic.data.corpus.sources.manifest import read_manifest
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.corpus.stage import collect_corpus, run_corpus
from gitnetic.data.jsonl import iter_jsonl
from tests.helpers import git, module, run_gitnetic, write_tree

MIT = (
    Path(__file__).resolve().parents[3] / "gitnetic" / "data" / "corpus" / "redact" / "gitleaks" / "LICENSE"
).read_text()
APACHE_NOTICE = """Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
"""
OUTPUTS = [f"{split}.jsonl" for split in SPLITS] + ["stats.json"]


def commit_all(repo: Path, files: dict[str, str], message: str) -> str:
    write_tree(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


@pytest.fixture
def repos(tmp_path: Path) -> dict[str, object]:
    """Three repositories: a work tree with a tag and a newer commit (read at the tag), a bare one (read
    at HEAD through a file:// URL), and one read at a pinned commit id."""
    made: dict[str, object] = {}
    alpha = tmp_path / "src" / "alpha"
    alpha.mkdir(parents=True)
    git(alpha, "init", "-q")
    made["alpha_v1"] = commit_all(
        alpha,
        {"LICENSE": MIT, "alpha/core.py": module("alpha_core"), "alpha/io.py": module("alpha_io")},
        "v1",
    )
    git(alpha, "tag", "v1")
    commit_all(alpha, {"alpha/late.py": module("alpha_late")}, "after v1")  # not read: the manifest pins v1

    work = tmp_path / "work-beta"
    work.mkdir()
    git(work, "init", "-q")
    made["beta_head"] = commit_all(
        work,
        {"COPYING": APACHE_NOTICE, "beta/a.py": module("beta_a"), "beta/b.py": module("beta_b", 8)},
        "beta",
    )
    beta = tmp_path / "src" / "beta.git"
    git(tmp_path, "clone", "-q", "--bare", str(work), str(beta))

    gamma = tmp_path / "src" / "gamma"
    gamma.mkdir()
    git(gamma, "init", "-q")
    made["gamma_first"] = commit_all(
        gamma, {"g/one.py": module("gamma_one"), "g/two.py": module("gamma_two")}, "1"
    )
    commit_all(gamma, {"g/three.py": module("gamma_three")}, "2")
    made.update(alpha=alpha, beta=beta, gamma=gamma)
    return made


def write_manifest(tmp_path: Path, repos: dict[str, object], extra: str = "") -> Path:
    manifest = tmp_path / "repos.txt"
    manifest.write_text(
        "# the team's repositories\n"
        "\n"
        "src/alpha   v1\n"  # relative to the manifest's folder
        f"file://{repos['beta']}   # bare, HEAD\n"
        f"{repos['gamma']}  {repos['gamma_first']}  gamma-old\n" + extra
    )
    return manifest


def params(
    tmp_path: Path, manifest: Path, out: str = "out", ratio: float = 0.2, **source: object
) -> CorpusParams:
    spec = {"name": "org", "type": "repos", "manifest": str(manifest), "cache_dir": str(tmp_path / "cache")}
    return CorpusParams(
        sources=[spec | source],
        splits=SplitParams(valid_ratio=ratio, test_ratio=ratio, seed=1),
        out_dir=str(tmp_path / out),
        num_workers=1,
    )


def records(out: Path) -> list[dict]:
    return [rec for split in SPLITS for rec in iter_jsonl(out / f"{split}.jsonl")]


def snapshot(out: Path) -> dict[str, bytes]:
    """The outputs, with the run's own folder in stats.json written the same for every run."""
    files = {name: (out / name).read_bytes() for name in OUTPUTS}
    files["stats.json"] = files["stats.json"].replace(str(out).encode(), b"OUT")
    return files


def test_manifest_documents_commits_licenses_and_cache_reuse(tmp_path: Path, repos: dict) -> None:
    manifest = write_manifest(tmp_path, repos)
    collect_corpus(params(tmp_path, manifest))
    out = tmp_path / "out"
    got = {(r["repository"], r["path"]) for r in records(out)}
    assert got == {
        ("alpha", "alpha/core.py"),
        ("alpha", "alpha/io.py"),
        ("beta", "beta/a.py"),
        ("beta", "beta/b.py"),
        ("gamma-old", "g/one.py"),
        ("gamma-old", "g/two.py"),
    }
    assert {r["source"] for r in records(out)} == {"org"}
    texts = {(r["repository"], r["path"]): r["text"] for r in records(out)}
    assert texts["alpha", "alpha/io.py"] == module("alpha_io")
    stats = json.loads((out / "stats.json").read_text())
    org = stats["sources"]["org"]
    assert {name: entry["commit"] for name, entry in org["repositories"].items()} == {
        "alpha": repos["alpha_v1"],
        "beta": repos["beta_head"],
        "gamma-old": repos["gamma_first"],
    }
    assert org["repositories"]["alpha"]["rev"] == "v1"
    assert org["repositories"]["beta"]["location"] == f"file://{repos['beta']}"
    assert stats["licenses"] == {"org/alpha": "MIT", "org/beta": "Apache-2.0", "org/gamma-old": None}
    assert org["repositories"]["beta"]["license"] == "Apache-2.0"
    assert source_license(params(tmp_path, manifest).sources[0]) == "Apache-2.0 AND MIT"
    assert org["skipped"]["unavailable_repository"] == 0
    assert "repositories" not in stats["sources"].get("stdlib", {})

    # the cache holds one complete bare repository per line and nothing half-fetched
    cache = tmp_path / "cache"
    entries = sorted(p.name for p in cache.iterdir() if p.suffix == ".git")
    assert len(entries) == 3 and not list(cache.glob(".*tmp-*"))
    before = {p: p.stat().st_mtime_ns for p in cache.iterdir()}

    # a rerun fetches nothing: the repositories are gone from their places and it still reads them all
    first = snapshot(out)
    for name in ("alpha", "beta", "gamma"):
        shutil.rmtree(repos[name])
    (cache / ".leftover.git.tmp-x").mkdir()  # what a killed fetch of another entry leaves is ignored
    shutil.rmtree(out)
    collect_corpus(params(tmp_path, manifest))
    assert snapshot(out) == first
    assert {p: p.stat().st_mtime_ns for p in cache.iterdir() if p.name in entries} == {
        p: t for p, t in before.items() if p.name in entries
    }


def test_killed_fetch_leftovers_are_replaced(tmp_path: Path, repos: dict) -> None:
    manifest = tmp_path / "one.txt"
    manifest.write_text(f"file://{repos['beta']}\n{repos['gamma']}\n")
    collect_corpus(params(tmp_path, manifest))
    cache = tmp_path / "cache"
    entry = next(cache.glob("beta-*.git"))
    stale = cache / f".{entry.name}.tmp-killed"
    shutil.copytree(entry, stale)  # a fetch killed before its rename, and the entry never renamed
    shutil.rmtree(entry)
    collect_corpus(params(tmp_path, manifest, out="again"))
    assert entry.is_dir() and not stale.exists()
    assert snapshot(tmp_path / "out") == snapshot(tmp_path / "again")


def test_unavailable_repository_stops_or_is_skipped(
    tmp_path: Path, repos: dict, caplog: pytest.LogCaptureFixture
) -> None:
    manifest = write_manifest(tmp_path, repos, extra=f"file://{tmp_path}/src/nowhere.git main gone\n")
    with pytest.raises(CorpusError, match=r"repository gone \(.*repos.txt line 6: .*\) does not exist"):
        collect_corpus(params(tmp_path, manifest))
    assert not (tmp_path / "out").exists()

    not_a_repo = tmp_path / "plain"
    not_a_repo.mkdir()
    manifest = write_manifest(tmp_path, repos, extra=f"{not_a_repo} main\n")
    with pytest.raises(
        CorpusError, match=r"cannot fetch repository plain \(.*repos.txt line 6: .*\): .+; fix"
    ):
        collect_corpus(params(tmp_path, manifest))
    assert not any((tmp_path / "out").glob("*.jsonl")) if (tmp_path / "out").exists() else True

    with caplog.at_level(logging.WARNING):
        stats = collect_corpus(params(tmp_path, manifest, skip_unavailable=True))
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warned) == 1 and "left out repository plain (" in warned[0] and "line 6" in warned[0], warned
    org = stats.sources["org"]
    assert org.skipped["unavailable_repository"] == 1
    assert org.repositories is not None and org.repositories["plain"]["commit"] is None
    assert "plain" not in {r["repository"] for r in records(tmp_path / "out")}
    assert "org/plain" not in stats.licenses


def test_license_allow_list_applies_per_repository(tmp_path: Path, repos: dict) -> None:
    manifest = write_manifest(tmp_path, repos)
    with pytest.raises(CorpusError, match=r"repository beta \(.*line 4: .*\): license Apache-2.0 is not in"):
        collect_corpus(params(tmp_path, manifest, licenses=["MIT"]))
    assert not (tmp_path / "out").exists()
    with pytest.raises(CorpusError, match=r"repository gamma-old \(.*line 5: .*\): no license detected"):
        collect_corpus(params(tmp_path, manifest, licenses=["MIT", "Apache-2.0"]))
    manifest.write_text("src/alpha v1\n")
    stats = collect_corpus(params(tmp_path, manifest, ratio=0.0, licenses=["MIT"]))
    assert stats.licenses == {"org/alpha": "MIT"} and stats.total_documents == 2


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("# only a comment\n\n   \n", r"lists no repositories \(3 line\(s\), all blank or comments\)"),
        ("src/alpha\nftp://host/x.git\n", r"line 2: ftp:// is not a git URL scheme"),
        ("src/alpha v1 a b\n", r"line 1: 4 fields \(at most 3\)"),
        ("src/alpha v1 bad/name\n", r"line 1: name 'bad/name' is not letters"),
        ("src/alpha\n# x\nsrc/alpha v1\n", r"line 3: name 'alpha' is already used on line 1"),
        ("src/alpha --upload-pack=x\n", r"line 1: revision '--upload-pack=x' starts with '-'"),
        ("https://\n", r"line 1: the URL has no host or path"),
    ],
)
def test_bad_manifest_lines(tmp_path: Path, repos: dict, text: str, error: str) -> None:
    manifest = tmp_path / "repos.txt"
    manifest.write_text(text)
    with pytest.raises(ConfigError, match=rf"manifest {manifest} {error}"):
        collect_corpus(params(tmp_path, manifest))
    assert not (tmp_path / "out").exists()


def test_missing_manifest_and_params(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"manifest .*nope.txt does not exist; point 'manifest' at"):
        collect_corpus(params(tmp_path, tmp_path / "nope.txt"))
    with pytest.raises(ConfigError, match=r"type repos needs a manifest"):
        SourceParams(name="org", type="repos")
    with pytest.raises(ConfigError, match=r"manifest is for type repos only"):
        SourceParams(name="org", type="git", path=".", manifest="m.txt")
    with pytest.raises(ConfigError, match=r"fetch_workers must be >= 1"):
        SourceParams(name="org", type="repos", manifest="m.txt", fetch_workers=0)
    with pytest.raises(ConfigError, match=r"revision from its manifest line .*remove 'rev'"):
        SourceParams(name="org", type="repos", manifest="m.txt", rev="v2")  # not silently ignored


def test_manifest_syntax(tmp_path: Path) -> None:
    manifest = tmp_path / "m" / "repos.txt"
    manifest.parent.mkdir()
    manifest.write_text(
        "https://github.com/org/service.git v1.2   # a tag\n"
        "git@github.com:org/tools.git - tools2\n"
        "../lib.git\n"
        "ssh://git@host/srv/x.git 0123456789abcdef0123456789abcdef01234567\n"
    )
    lines = read_manifest(manifest)
    assert [(ln.number, ln.name, ln.rev) for ln in lines] == [
        (1, "service", "v1.2"),
        (2, "tools2", "HEAD"),
        (3, "lib", "HEAD"),
        (4, "x", "0123456789abcdef0123456789abcdef01234567"),
    ]
    assert lines[2].location == str(tmp_path / "lib.git") and lines[2].local == tmp_path / "lib.git"
    assert lines[0].local is None


def test_fan_out_by_repository_is_byte_identical(tmp_path: Path, repos: dict) -> None:
    manifest = write_manifest(tmp_path, repos)
    one = params(tmp_path, manifest)
    collect_corpus(one)
    expected = snapshot(tmp_path / "out")
    for count in (3, 2):
        fanned = CorpusParams(
            sources=one.sources,
            splits=one.splits,
            out_dir=str(tmp_path / f"fan{count}"),
            num_workers=2 if count == 2 else 1,
            parts=PartsParams(count=count),
        )
        for i in range(count):
            run_corpus(fanned, CorpusJobParams(job="sign", part_index=i))
        run_corpus(fanned, CorpusJobParams(job="decide"))
        for split in SPLITS:
            run_corpus(fanned, CorpusJobParams(job="write", split=split))
        assert snapshot(tmp_path / f"fan{count}") == expected, f"parts.count {count}"


def test_cli_bad_line_is_one_line_and_default_cache_dir(tmp_path: Path, repos: dict) -> None:
    (tmp_path / "repos.txt").write_text(f"src/alpha v1\nfile://{repos['beta']}\nhtps://example.org/x.git\n")
    source = json.dumps({"name": "org", "type": "repos", "manifest": "repos.txt"})
    proc = run_gitnetic("corpus", "--sources", source, "--out_dir", "out", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "repos.txt line 3: htps:// is not a git URL scheme" in error[0], error[0]
    assert not (tmp_path / "out").exists() and not (tmp_path / "data").exists()  # nothing fetched either

    (tmp_path / "repos.txt").write_text(f"src/alpha v1\nfile://{repos['beta']}\n")
    proc = run_gitnetic(
        "corpus", "--sources", source, "--out_dir", "out", "--splits.test_ratio", "0", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "data" / "cache" / "repos").glob("*.git"))) == 2


def test_fetch_each_kind_of_revision(tmp_path: Path, repos: dict) -> None:
    cache = tmp_path / "cache"
    alpha, gamma, first = f"file://{repos['alpha']}", f"file://{repos['gamma']}", repos["gamma_first"]
    cases = {  # (location, rev): (commit, shallow)
        (alpha, "v1"): (repos["alpha_v1"], True),  # a tag: cloned at depth 1
        (gamma, first): (first, True),  # a full commit id: fetched alone
        (gamma, first[:10]): (first, False),  # an abbreviated id: the whole history, then resolved
        (gamma, "main~1"): (first, False),
        (str(repos["gamma"]), "main~1"): (first, False),  # a local path: git's local clone
    }
    for (location, rev), (commit, shallow) in cases.items():
        got = fetch_repository(cache, location, rev)
        assert got.commit == commit, (location, rev)
        is_shallow = git(got.path, "rev-parse", "--is-shallow-repository").strip() == "true"
        assert is_shallow == shallow, (location, rev)
        assert git(got.path, "rev-parse", "--is-bare-repository").strip() == "true"
        assert fetch_repository(cache, location, rev) == got  # from the cache
    with pytest.raises(FetchFailed, match=r"revision 'nope' not found"):
        fetch_repository(cache, gamma, "nope")
    assert not list(cache.glob(".*tmp-*")) and len(list(cache.glob("*.git"))) == len(cases)


def test_concurrent_fetches_of_one_repository_fetch_it_once(tmp_path: Path, repos: dict) -> None:
    """Threads (or fan-out jobs sharing cache_dir) wanting one repository: one fetches, the others wait
    on its lock file and take the complete entry."""
    cache, location = tmp_path / "cache", f"file://{repos['beta']}"
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda _: fetch_repository(cache, location, "HEAD"), range(8)))
    assert len(set(got)) == 1 and got[0].commit == repos["beta_head"]
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == [got[0].path.name]
