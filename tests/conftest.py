"""Shared, session-scoped fixtures built once per pytest(-xdist) worker; treat them as read-only (copy
before modifying). The builders behind them are plain functions in the ``tests/helpers`` package.

* ``tiny_corpus_dir`` -> ``Path``: a folder with the files in ``helpers.TINY_CORPUS_FILES`` (8 small
  Python modules, incl. tab indentation, CRLF line endings and non-ASCII text, plus one ``README.md``).
* ``tiny_corpus_files`` -> ``dict[str, bytes]``: those files' relative paths and exact bytes.
* ``tiny_corpus_jsonl`` -> ``Path``: ``train.jsonl``/``valid.jsonl``/``test.jsonl``/``stats.json`` written by
  the real corpus stage from ``tiny_corpus_dir`` + the stdlib ``json`` package; every split is non-empty.
* ``tiny_tokenizer`` -> ``Path``: a folder saved by the real tokenizer stage (byte-level BPE, vocab 512,
  ``<s>``=0 ``<pad>``=1 ``</s>``=2 ``<unk>``=3 ``<mask>``=4) trained on the stdlib ``json`` package and
  ``tiny_corpus_dir``; load it with ``gitnetic.data.tokenizer.load.load_tokenizer(path)`` or
  ``AutoTokenizer.from_pretrained(path, local_files_only=True)``.
* ``tokenizer``: ``tiny_tokenizer`` loaded (one per test module).
* ``fim_tokenizer`` -> ``Path``: ``tiny_tokenizer`` with the FIM tokens too.
* ``task_tokenizer_dir`` -> ``Path``: a byte-level BPE (vocab 320) on a few stdlib files (model-config and
  task tests).
* ``lm_shards`` -> ``Path``: ``train``/``valid``/``test`` shards by the real preprocess stage, of code a
  tiny model learns from in a few dozen steps.
* ``run_gitnetic``, ``start_gitnetic_process``, ``train_seed``, ``check_trained``: ``helpers.run_gitnetic``,
  ``helpers.start_gitnetic``, ``helpers.train_seed_command`` and ``helpers.assert_trained`` as fixtures
  (import them instead).
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per torch process (set before torch is first imported, inherited by the CLI
# subprocesses): pytest -n 2 already uses both cores, and tiny models spin-wait with more threads.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import helpers  # noqa: E402

# The costliest modules, costliest first (`pytest --durations`; most of their time is CLI subprocesses
# importing torch and Lightning). scripts/test.sh runs `-n 2 --dist loadscope --no-loadscope-reorder`:
# xdist hands whole modules to the workers in collection order, so these start at once and the many
# short modules fill in around them. xdist's default reorder (modules with the most tests first) started
# the 4-test experiments module last, and one worker ran it alone for minutes at the end.
#
# test_pipeline.py first: its first test builds the reproduced repository that test_experiments.py
# copies (tests/e2e/test_pipeline.py: reproduced_repo). test_experiments.py comes third: the 2-test
# ddp module is short of pending tests at once, so xdist queues the experiments behind it on the
# other worker, and they start when the repository is long built instead of waiting for it idle.
COSTLIEST_MODULES = (
    "tests/e2e/test_pipeline.py",
    "tests/cli/test_ddp_train.py",
    "tests/e2e/test_experiments.py",
    "tests/cli/test_interrupt.py",
    "tests/e2e/test_init_pipeline.py",
    "tests/cli/test_train_cli.py",
    "tests/common/test_threads.py",
    "tests/inference/test_generate.py",
    "tests/cli/test_init_from.py",
    "tests/evaluation/test_evaluate_export.py",
    "tests/e2e/test_multi_source.py",
    # ~10 s each: early too, so that the two workers end on short modules and at nearly the same time
    "tests/data/corpus/test_corpus_parallel.py",
    "tests/benchmark/test_sandbox.py",
    "tests/data/shards/test_pieces.py",
    "tests/modules/test_ddp_batches.py",
    "tests/models/test_lora.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """Outside the SLURM tests (``-m slurm``), an ``scontrol`` that fails at once comes first on PATH.

    Why: Snakemake's SLURM executor plugin (a dev dependency) runs ``scontrol show config`` when it is
    imported, by every ``snakemake`` command, with a 10 s timeout. On a machine where SLURM is installed
    but no controller runs (this one after scripts/test-slurm.sh, and CI, which runs the SLURM tests
    after this suite on the same machine), each of the suite's Snakemake runs waited those 10 s for
    nothing. The SLURM tests themselves keep the real ``scontrol``.
    """
    markers = config.getoption("markexpr", "") or ""
    if "slurm" in markers and "not slurm" not in markers:
        return
    shim = Path(config.rootpath) / ".pytest-bin"  # a fixed place: xdist workers inherit PATH
    if os.environ.get("PATH", "").split(os.pathsep)[0] == str(shim):
        return
    shim.mkdir(exist_ok=True)
    scontrol = shim / "scontrol"
    scontrol.write_text("#!/bin/sh\n# tests/conftest.py: no SLURM controller in the unit suite\nexit 1\n")
    scontrol.chmod(0o755)
    os.environ["PATH"] = f"{shim}{os.pathsep}{os.environ.get('PATH', '')}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the modules of ``COSTLIEST_MODULES`` first, in that order; the rest keep theirs."""
    rank = {path: i for i, path in enumerate(COSTLIEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session")
def tiny_corpus_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``helpers.TINY_CORPUS_FILES`` (read-only for tests)."""
    return helpers.write_tree(tmp_path_factory.mktemp("tiny_corpus"), helpers.TINY_CORPUS_FILES)


@pytest.fixture(scope="session")
def tiny_corpus_files() -> dict[str, bytes]:
    """A copy of ``helpers.TINY_CORPUS_FILES`` (relative path -> exact bytes), to compare outputs against."""
    return dict(helpers.TINY_CORPUS_FILES)


@pytest.fixture(scope="session")
def tiny_corpus_jsonl(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Real corpus-stage output (train/valid/test.jsonl, stats.json) with every split non-empty."""
    from gitnetic.data.corpus.params import CorpusParams, SplitParams
    from gitnetic.data.corpus.stage import collect_corpus

    src = tmp_path_factory.mktemp("tiny_corpus_src")
    shutil.copytree(tiny_corpus_dir, src, dirs_exist_ok=True)
    shutil.copytree(helpers.stdlib_json_dir(), src / "json", ignore=shutil.ignore_patterns("__pycache__"))
    out = tmp_path_factory.mktemp("tiny_corpus_jsonl")
    stats = collect_corpus(
        CorpusParams(
            source="dir",
            path=str(src),
            splits=SplitParams(valid_ratio=0.2, test_ratio=0.2, seed=1),
            out_dir=str(out),
        )
    )
    assert all(stats.documents.values()), f"a tiny corpus split is empty: {stats.documents}; change the seed"
    return out


def _tiny_tokenizer_texts(tiny_corpus_dir: Path) -> list[str]:
    return helpers.read_texts(helpers.stdlib_json_files() + sorted(tiny_corpus_dir.rglob("*.py")))


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Folder of a real vocab-512 byte-level BPE tokenizer (see module docstring)."""
    out = tmp_path_factory.mktemp("tiny_tokenizer") / "tokenizer"
    return helpers.train_tiny_tokenizer(out, _tiny_tokenizer_texts(tiny_corpus_dir))


@pytest.fixture(scope="session")
def fim_tokenizer(tmp_path_factory: pytest.TempPathFactory, tiny_corpus_dir: Path) -> Path:
    """Like ``tiny_tokenizer`` but made with ``fim_tokens``: also ``<fim_prefix>``=5 ``<fim_middle>``=6
    ``<fim_suffix>``=7 ``<fim_pad>``=8."""
    out = tmp_path_factory.mktemp("fim_tokenizer") / "tokenizer"
    return helpers.train_tiny_tokenizer(out, _tiny_tokenizer_texts(tiny_corpus_dir), fim_tokens=True)


@pytest.fixture(scope="module")
def tokenizer(tiny_tokenizer: Path):
    """``tiny_tokenizer`` loaded (a ``PreTrainedTokenizerFast``)."""
    from gitnetic.data.tokenizer.load import load_tokenizer

    return load_tokenizer(tiny_tokenizer)


@pytest.fixture(scope="session")
def lm_shards(
    tmp_path_factory: pytest.TempPathFactory, tiny_corpus_jsonl: Path, tiny_tokenizer: Path
) -> Path:
    """``train``/``valid``/``test`` MMIDIDX shards written by the real preprocess stage.

    train: the shared tiny corpus' train split plus 240 generated modules; valid/test: 20 generated
    modules each (other seeds).
    """
    corpus = tmp_path_factory.mktemp("lm_corpus")
    real_train = (tiny_corpus_jsonl / "train.jsonl").read_text(encoding="utf-8")
    splits = {
        "train": helpers.generated_modules(0, 240),
        "valid": helpers.generated_modules(1, 20),
        "test": helpers.generated_modules(2, 20),
    }
    for split, docs in splits.items():
        lines = "".join(json.dumps({"text": doc}) + "\n" for doc in docs)
        (corpus / f"{split}.jsonl").write_text(
            (real_train if split == "train" else "") + lines, encoding="utf-8"
        )
    return helpers.preprocess_shards(tiny_tokenizer, corpus, tmp_path_factory.mktemp("bin"), "--workers", "1")


@pytest.fixture(scope="session")
def run_gitnetic():
    """``run_gitnetic(*args, cwd=...)``: :func:`helpers.run_gitnetic`."""
    return helpers.run_gitnetic


@pytest.fixture(scope="session")
def start_gitnetic_process():
    """``start_gitnetic_process(*args, cwd=...)``: :func:`helpers.start_gitnetic` (a running ``Popen``)."""
    return helpers.start_gitnetic


@pytest.fixture(scope="session")
def train_seed():
    """``train_seed(root, config, tokenizer, shards)``: :func:`helpers.train_seed_command`."""
    return helpers.train_seed_command


@pytest.fixture(scope="session")
def check_trained():
    """``check_trained(run)``: :func:`helpers.assert_trained`."""
    return helpers.assert_trained


@pytest.fixture(scope="session")
def task_tokenizer_dir(tmp_path_factory) -> Path:
    """A byte-level BPE (vocab 320) trained on a few stdlib files, saved like the tokenizer stage does."""
    texts = helpers.read_texts(helpers.stdlib_json_files())
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    return helpers.train_tiny_tokenizer(out, texts, vocab_size=320, model_max_length=256)


@pytest.fixture(scope="module")
def fresh_checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_tokenizer: Path) -> Path:
    """A Lightning-shaped checkpoint of an untrained gpt2-tiny (``state_dict`` keys under ``model.``)."""
    import torch

    from gitnetic.models.build import build_model_and_tokenizer

    model = build_model_and_tokenizer(str(helpers.GPT2_TINY), str(tiny_tokenizer)).model
    path = tmp_path_factory.mktemp("ckpt") / "fresh.ckpt"
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 3, "hyper_parameters": {"objective": "clm"}}, path)
    return path
