"""The wheel a ``pip install`` user gets: built from this checkout, installed into a fresh venv, and run
from elsewhere.

Why a test: the suite imports the checkout (editable install, ``PYTHONPATH``), where every file is on
disk whether or not the build ships it. A data file without a ``[tool.setuptools.package-data]``
pattern, or one moved out of a pattern's reach, fails only for installed users (``--config_path
gpt2-tiny`` not found, the redactor without its rule set). So the wheel is built here with the ordinary
client (``pip wheel``, no build isolation: no download), checked by construction against what git
tracks under ``gitnetic/``, and ``pip install``-ed (not editable, no dependencies) into a new venv whose
dependencies come from the test's own environment through a ``.pth`` line; that venv runs the CLI and the
loaders outside the checkout.
"""

from __future__ import annotations

import dataclasses
import email.parser
import hashlib
import json
import random
import re
import shutil
import string
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gitnetic.models.config import ModelConfig, shipped_model_configs
from tests.helpers import REPO
from tests.helpers.cli import child_env, cli_env


def _git_files(*args: str) -> list[str]:
    """Paths (relative to the repository) that ``git ls-files ARGS`` names and that exist as files."""
    out = subprocess.run(
        ["git", "ls-files", "-z", *args], cwd=REPO, capture_output=True, check=True, timeout=60
    ).stdout.decode()
    return sorted(p for p in out.split("\0") if p and (REPO / p).is_file() and not (REPO / p).is_symlink())


@dataclasses.dataclass(frozen=True)
class Built:
    wheel: Path
    log: str  # pip's and setuptools' output of the build (-v)
    site: Path  # the fresh venv's site-packages, where pip installed the wheel
    python: Path  # the fresh venv's interpreter


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The wheel of this checkout as it is now, built from a copy so no ``build/`` or ``*.egg-info`` lands
    in the checkout and none left there leaks in. The copy: the tracked files, plus new files git does
    not ignore at the top or under ``gitnetic/`` (not yet added, but part of the package), not the
    untracked run outputs elsewhere."""
    root = tmp_path_factory.mktemp("packaging")
    src = root / "src"
    new = [
        p for p in _git_files("--others", "--exclude-standard") if "/" not in p or p.startswith("gitnetic/")
    ]
    for rel in sorted({*_git_files("--cached"), *new}):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, src / rel)
    env = child_env()
    env.pop("PYTHONPATH", None)
    # setuptools notes "byte-compiling is disabled" as a warning under it: that is this shell, not our config
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]
    cmd += ["--check-build-dependencies", "--disable-pip-version-check", "-v", "-w", str(root / "dist"), "."]
    proc = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True, timeout=300, check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"pip wheel failed ({proc.returncode}):\n{log[-6000:]}"
    (wheel,) = (root / "dist").glob("gitnetic-*.whl")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index"]
    proc = subprocess.run(
        [*install, "--disable-pip-version-check", str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, (
        f"pip install of the wheel failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
    )
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.strip()
    )  # fmt: skip
    # the dependencies (torch, transformers, ...) from this environment; its .pth files (the editable
    # install of the checkout among them) are not run for a folder named in a .pth line
    deps = subprocess.run(
        [sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.strip()  # fmt: skip
    (site / "_gitnetic_test_deps.pth").write_text(deps + "\n")
    return Built(wheel=wheel, log=log, site=site, python=python)


def _wheel_names(built: Built) -> set[str]:
    with zipfile.ZipFile(built.wheel) as zf:
        return set(zf.namelist())


def _dist_info(built: Built) -> str:
    (name,) = {n.split("/", 1)[0] for n in _wheel_names(built) if n.split("/", 1)[0].endswith(".dist-info")}
    return name


def _run_installed(built: Built, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` of the fresh venv in ``cwd`` (outside the checkout), nothing on ``PYTHONPATH``."""
    cwd.mkdir(parents=True, exist_ok=True)
    env = cli_env()
    env.pop("PYTHONPATH", None)
    return subprocess.run(
        [str(built.python), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_the_build_has_no_warning(built):
    flagged = [line for line in built.log.splitlines() if re.search(r"warning|deprecat", line, re.I)]
    assert not flagged, "the wheel build warns (pyproject.toml?):\n" + "\n".join(flagged)


def test_the_wheel_holds_every_file_git_tracks_under_the_package(built):
    tracked = _git_files("gitnetic")
    assert any(p.endswith(".py") for p in tracked) and any(not p.endswith(".py") for p in tracked)
    missing = sorted(set(tracked) - _wheel_names(built))
    assert not missing, (
        "tracked under gitnetic/ but not in the wheel (give each a pattern in pyproject.toml's "
        f"[tool.setuptools.package-data]): {missing}"
    )


def test_the_wheel_carries_the_licenses_and_an_spdx_expression(built):
    dist_info = _dist_info(built)
    with zipfile.ZipFile(built.wheel) as zf:
        assert zf.read(f"{dist_info}/licenses/LICENSE") == (REPO / "LICENSE").read_bytes()
        metadata = email.parser.Parser().parsestr(zf.read(f"{dist_info}/METADATA").decode())
        # vendored third-party licenses (gitleaks' MIT) ship in the package and among the wheel's licenses
        vendored = [p for p in _git_files("gitnetic") if Path(p).name == "LICENSE"]
        assert vendored, "no vendored LICENSE under gitnetic/ (gitleaks' rule set ships with its MIT license)"
        for rel in vendored:
            assert zf.read(f"{dist_info}/licenses/{rel}") == (REPO / rel).read_bytes()
    assert metadata["License-Expression"] == "Apache-2.0"
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text and "Version 2.0, January 2004" in text  # the full text, not a stub
    assert "END OF TERMS AND CONDITIONS" in text and len(text) > 10_000
    assert sorted(metadata.get_all("License-File")) == sorted(["LICENSE", *vendored])


# Run inside the unpacked wheel: where gitnetic comes from, every shipped model config loaded by name, and
# the bytes of every data file the package holds (argv[1]: their paths relative to gitnetic/).
_LOAD_SCRIPT = """
import dataclasses, hashlib, importlib.resources, json, sys
import gitnetic
from gitnetic.models.config import ModelConfig, shipped_model_configs
configs = {n: dataclasses.asdict(ModelConfig.from_yaml(n)) for n in shipped_model_configs()}
package = importlib.resources.files("gitnetic")
data = {rel: hashlib.sha256(package.joinpath(rel).read_bytes()).hexdigest() for rel in json.loads(sys.argv[1])}
print(json.dumps({"file": gitnetic.__file__, "configs": configs, "data": data}))
"""


def test_the_installed_package_loads_its_model_configs_and_data_files(built, tmp_path):
    data_files = [p.removeprefix("gitnetic/") for p in _git_files("gitnetic") if not p.endswith(".py")]
    proc = _run_installed(built, tmp_path / "elsewhere", "-c", _LOAD_SCRIPT, json.dumps(data_files))
    assert proc.returncode == 0, proc.stderr[-4000:]
    seen = json.loads(proc.stdout)
    assert Path(seen["file"]).resolve().is_relative_to(built.site.resolve()), seen["file"]
    assert "gpt2-tiny" in seen["configs"]
    assert sorted(seen["configs"]) == shipped_model_configs()
    for name, loaded in seen["configs"].items():
        assert Path(loaded.pop("source")).resolve().is_relative_to(built.site.resolve()), name
        here = dataclasses.asdict(ModelConfig.from_yaml(name))
        here.pop("source")
        assert loaded == here, name
    package = REPO / "gitnetic"
    assert seen["data"] == {
        rel: hashlib.sha256((package / rel).read_bytes()).hexdigest() for rel in data_files
    }


def test_the_installed_cli_redacts_with_the_shipped_gitleaks_rules(built, tmp_path):
    rng = random.Random(0)
    token = "ghp_" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(36))
    src = tmp_path / "elsewhere" / "src"
    src.mkdir(parents=True)
    # in a URL, under no secret-like name: only gitleaks' github-pat rule can find it
    (src / "mod.py").write_text(f"def f():\n    return 1\n\n# see https://example.com/{token}/x\n")
    proc = _run_installed(
        built,
        src.parent,
        *("-m", "gitnetic", "corpus", "--source", "dir", "--path", "src", "--out_dir", "out"),
        *(
            "--no_neardup.enabled",
            "--splits.valid_ratio",
            "0",
            "--splits.test_ratio",
            "0",
            "--num_workers",
            "1",
        ),
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = src.parent / "out"
    stats = json.loads((out / "stats.json").read_text(encoding="utf-8"))
    assert stats["documents"]["train"] == 1
    assert stats["redacted"].get("github_pat") == 1, stats["redacted"]
    text = (out / "train.jsonl").read_text(encoding="utf-8")
    assert token[4:12] not in text and "def f():" in text
