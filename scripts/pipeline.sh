#!/usr/bin/env bash
# Set up .venv if needed, then run the whole pipeline (corpus -> tokenizer -> preprocess -> train ->
# evaluate -> export) on the embedded default corpus with DVC. Extra args go to 'dvc repro'.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export WANDB_MODE=${WANDB_MODE:-offline}
export PATH="$PWD/.venv/bin:$PATH"   # dvc.yaml stages call `python`
.venv/bin/dvc repro "$@"
echo
echo "Pipeline summary:"
.venv/bin/python -m gitnetic summary --params_file params.yaml   # all metrics: .venv/bin/dvc metrics show
