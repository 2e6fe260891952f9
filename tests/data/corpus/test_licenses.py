"""Each source's license on record in stats.json, and the ``licenses`` allow-list refusing or accepting it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gitnetic.common.errors import CorpusError
from gitnetic.data.corpus.licenses import source_license
from gitnetic.data.corpus.params import CorpusParams, SplitParams
from gitnetic.data.corpus.sources.params import SourceParams
from gitnetic.data.corpus.stage import collect_corpus
from tests.helpers import git, run_gitnetic, write_tree

MIT = (
    Path(__file__).resolve().parents[3] / "gitnetic" / "data" / "corpus" / "redact" / "gitleaks" / "LICENSE"
).read_text()
GPL3_NOTICE = """Copyright (C) 2024 Ada Lovelace

This program is free software: you can redistribute it and/or modify
it under the terms of the GNU General Public License as published by
the Free Software Foundation, either version 3 of the License, or
(at your option) any later version.

This program is distributed in the hope that it will be useful,
but WITHOUT ANY WARRANTY; without even the implied warranty of
MERCHANTABILITY or FITNESS FOR A PARTICULAR PURPOSE.  See the
GNU General Public License for more details.

You should have received a copy of the GNU General Public License
along with this program.  If not, see <https://www.gnu.org/licenses/>.
"""
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
CODE = "def area(w, h):\n    return w * h\n"


def gpl_repo(root: Path) -> Path:
    write_tree(root, {"COPYING": GPL3_NOTICE, "src/geo.py": CODE})
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "Initial import")
    return root


def test_allow_list_accepts_mit_and_records_every_source(tmp_path: Path) -> None:
    mit = write_tree(tmp_path / "mit", {"LICENSE": MIT, "pkg/geo.py": CODE})
    repo = gpl_repo(tmp_path / "gpl")
    out = tmp_path / "out"
    sources = [
        {"name": "mit", "type": "dir", "path": str(mit), "licenses": ["MIT", "Apache-2.0"]},
        {"name": "gpl", "type": "git", "path": str(repo)},  # no allow-list: recorded, not checked
        {"name": "history", "type": "git-history", "path": str(repo)},
    ]
    collect_corpus(
        CorpusParams(sources=sources, splits=SplitParams(valid_ratio=0, test_ratio=0), out_dir=str(out))
    )
    stats = json.loads((out / "stats.json").read_text())
    assert stats["licenses"] == {"mit": "MIT", "gpl": "GPL-3.0-or-later", "history": "GPL-3.0-or-later"}


def test_allow_list_refuses_a_gpl_source_in_one_line(tmp_path: Path) -> None:
    repo = gpl_repo(tmp_path / "gpl")
    out = tmp_path / "out"
    source = {"name": "vendored", "type": "git", "path": str(repo), "licenses": ["MIT", "Apache-2.0"]}
    proc = run_gitnetic("corpus", "--sources", json.dumps(source), "--out_dir", out, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    error = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(error) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert "'vendored'" in error[0] and "GPL-3.0-or-later" in error[0] and "MIT, Apache-2.0" in error[0]
    assert not out.exists()  # refused before anything was written


def test_dual_license_no_license_and_repository_top(tmp_path: Path) -> None:
    dual = write_tree(tmp_path / "dual", {"LICENSE-MIT": MIT, "LICENSE-APACHE": APACHE_NOTICE, "a.py": CODE})
    spec = SourceParams(name="dual", type="dir", path=str(dual), licenses=["MIT"])
    assert source_license(spec) == "Apache-2.0 AND MIT"
    with pytest.raises(
        CorpusError, match=r"'dual'.*license Apache-2\.0 is not in its licenses allow-list \[MIT\]"
    ):
        collect_corpus(CorpusParams(sources=[spec], out_dir=str(tmp_path / "o1")))
    bare = write_tree(tmp_path / "bare", {"README.md": "Use freely.\n", "a.py": CODE})
    assert source_license(SourceParams(name="bare", type="dir", path=str(bare))) is None
    with pytest.raises(CorpusError, match="'bare'.*no license detected"):
        collect_corpus(
            CorpusParams(sources=[{"name": "bare", "type": "dir", "path": str(bare), "licenses": ["MIT"]}],
                         out_dir=str(tmp_path / "o2"))
        )  # fmt: skip
    # a sub-folder of a repository has the repository's license; a sub-tree of a git source too
    repo = gpl_repo(tmp_path / "gpl")
    assert source_license(SourceParams(name="sub", type="dir", path=str(repo / "src"))) == "GPL-3.0-or-later"
    assert source_license(SourceParams(name="sub", type="git", path=str(repo / "src"))) == "GPL-3.0-or-later"
