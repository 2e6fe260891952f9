#!/usr/bin/env bash
# The SLURM tests: start the one-node SLURM of scripts/slurm-local.sh (installing slurm-wlm and munge
# when missing) and run the tests marked `slurm` on it: the whole pipeline through the SLURM profile, a
# time-limited train job resubmitted until done, and two-task srun DDP training. CI runs this after
# scripts/test.sh. Where SLURM cannot be installed (not root, or not Debian/Ubuntu) and none is
# installed, it prints one line saying so and exits 0. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "SLURM tests skipped: SLURM is not installed and installing it needs root on Debian/Ubuntu (apt-get install slurm-wlm munge)"
    exit 0
  fi
fi
if [ "$(id -u)" -ne 0 ] && [ -z "${GITNETIC_SLURM_RUNNING:-}" ]; then
  echo "SLURM tests skipped: starting the local SLURM daemons needs root (or set GITNETIC_SLURM_RUNNING=1 with one running)"
  exit 0
fi
bash scripts/setup.sh
[ -n "${GITNETIC_SLURM_RUNNING:-}" ] || bash scripts/slurm-local.sh up
export SLURM_CONF="${SLURM_CONF:-${GITNETIC_SLURM_DIR:-/tmp/gitnetic-slurm}/slurm.conf}"
export WANDB_MODE=offline WANDB_SILENT=true TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
# One test at a time: the jobs of each test already fill the node's CPUs.
exec .venv/bin/python -m pytest -n 0 -m slurm -q "$@"
