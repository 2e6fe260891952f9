"""Builders shared by the tests, one module per concern; every name is re-exported here.

Import them (``from tests.helpers import write_shard``; pyproject's pytest ``pythonpath`` puts the
repository root on ``sys.path``), or from the module that holds them:

* :mod:`.paths`: ``REPO``, ``CONFIGS``, ``GPT2_TINY``, ``VENV_BIN``;
* :mod:`.trees`: the tiny corpus (``TINY_CORPUS_FILES``), ``write_tree``, the stdlib ``json`` package,
  ``git`` with a fixed identity, ``generated_modules``;
* :mod:`.tokenizer`: ``train_tiny_tokenizer``;
* :mod:`.shards`: ``write_shard``, ``marked_docs``, ``encode_files``, ``preprocess_shards``;
* :mod:`.models`: tiny GPT-2/RoBERTa, ``module_and_data``, checkpoint weights (torch is imported only
  when one of them is called, so data tests never load it);
* :mod:`.disk`: ``small_tmpfs`` and ``fill`` (a nearly full file system, for disk-full tests);
* :mod:`.cli`: subprocess environments and runners (``run_gitnetic``, ``run_ok``, ``copy_pipeline``, ...);
* :mod:`.training`: the seed's example command and ``assert_trained``;
* :mod:`.session_cache`: ``built_once`` (a folder built once per session, shared by the xdist workers);
* :mod:`.corpora`: ``module`` (a distinct Python module) and trees exercising every corpus decision;
* :mod:`.pool_scenarios` (not re-exported: run as a script): worker deaths for the ordered pool's tests.

The session fixtures built from them (``tiny_tokenizer``, ``lm_shards``, ...) are in
``tests/conftest.py``. Why shared builders: each was copied into several test files and the copies
drifted (other model sizes, other ways to encode a file, other subprocess environments). Tests that
need their own numbers pass them as arguments, so what a test depends on is visible at its call.
"""

from tests.helpers.cli import (
    child_env,
    cli_env,
    copy_pipeline,
    pipeline_env,
    run_gitnetic,
    run_ok,
    start_gitnetic,
    tiny_train_args,
    wait_until,
)
from tests.helpers.corpora import git_tree, mixed_tree, module
from tests.helpers.disk import fill, small_tmpfs
from tests.helpers.experiments import exp_names, queue_workers
from tests.helpers.models import (
    TINY_MODEL_CONFIG,
    assert_same_weights,
    checkpoint_weights,
    module_and_data,
    save_random_model,
    tiny_gpt2,
    tiny_roberta,
)
from tests.helpers.paths import (
    CONFIGS,
    GPT2_TINY,
    REPO,
    VENV_BIN,
)
from tests.helpers.session_cache import built_once
from tests.helpers.shards import (
    encode_files,
    marked_docs,
    preprocess_shards,
    write_shard,
)
from tests.helpers.tokenizer import (
    TINY_VOCAB_SIZE,
    train_tiny_tokenizer,
)
from tests.helpers.training import (
    SEED_STEPS,
    assert_trained,
    seed_command,
    train_seed_command,
)
from tests.helpers.trees import (
    TINY_CORPUS_FILES,
    generated_modules,
    git,
    read_texts,
    stdlib_json_dir,
    stdlib_json_files,
    write_tree,
)

__all__ = [
    "fill",
    "small_tmpfs",
    "git_tree",
    "mixed_tree",
    "module",
    "exp_names",
    "queue_workers",
    "CONFIGS",
    "GPT2_TINY",
    "REPO",
    "SEED_STEPS",
    "TINY_CORPUS_FILES",
    "TINY_MODEL_CONFIG",
    "TINY_VOCAB_SIZE",
    "VENV_BIN",
    "assert_same_weights",
    "assert_trained",
    "built_once",
    "checkpoint_weights",
    "child_env",
    "cli_env",
    "copy_pipeline",
    "encode_files",
    "generated_modules",
    "git",
    "marked_docs",
    "module_and_data",
    "pipeline_env",
    "preprocess_shards",
    "read_texts",
    "run_gitnetic",
    "run_ok",
    "seed_command",
    "start_gitnetic",
    "stdlib_json_dir",
    "stdlib_json_files",
    "save_random_model",
    "tiny_gpt2",
    "tiny_roberta",
    "tiny_train_args",
    "train_seed_command",
    "train_tiny_tokenizer",
    "wait_until",
    "write_shard",
    "write_tree",
]
