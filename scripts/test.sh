#!/usr/bin/env bash
# Set up .venv if needed, then run the whole test suite (unit + end-to-end), CPU only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# One thread per torch process: pytest workers and the subprocesses they start share 2 cores.
export WANDB_MODE=offline WANDB_SILENT=true TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# --dist loadscope keeps a module (and its module-scoped repository) on one worker;
# --no-loadscope-reorder hands modules out in collection order, which tests/conftest.py sorts heaviest
# first (xdist's own reorder, by number of tests, started the long e2e modules last: a long tail).
exec .venv/bin/python -m pytest -n "${PYTEST_WORKERS:-2}" --dist loadscope --no-loadscope-reorder -q "$@"
