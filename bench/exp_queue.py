"""Two queued experiments at once (``dvc queue start -j 2``) against the same two one after the other.

What is measured, in one fresh DVC repository (the project's pipeline and ``params.yaml``, with a
smaller corpus and ``--steps`` training steps; the corpus, tokenizer and shards are built once first,
not timed):

* **sequential** (the baseline): experiments ``learning_rate`` A and B queued, ``dvc queue start -j 1``;
* **parallel**: the same two, queued again, ``dvc queue start -j 2``;
* **parallel, spinning** (``--spinning``, the behaviour before gitnetic set ``OMP_WAIT_POLICY``): the
  same with ``OMP_WAIT_POLICY=ACTIVE`` in the queue workers' environment.

Each round trains the same two trajectories: the rounds differ only in ``train.log_every_n_steps``
(trajectory-free, so the floats are the same, but new DVC params, so DVC trains instead of restoring
its run cache). The wall time runs from ``dvc queue start`` until both experiments are done, so it
includes every stage and DVC's own work; the ratio is sequential time / parallel time (= the parallel
throughput as a multiple of the sequential one; goal >= 0.9). The bench then checks that every round
produced bit-identical ``metrics/eval.json`` for each learning rate.

    python bench/exp_queue.py                     # 60 steps (the issue's setting), with --spinning
    python bench/exp_queue.py --steps 120 --no-spinning
    python bench/exp_queue.py --direct            # the trainings alone, as bare processes (no DVC)

Run it on a quiet machine for figures that mean something: other work on the cores changes them a lot.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.helpers import exp_names, queue_workers  # noqa: E402 - the tests wait for queues the same way

VENV_BIN = Path(sys.executable).parent
LEARNING_RATES = ("0.001", "0.004")


def env(**extra: str) -> dict[str, str]:
    out = dict(os.environ)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT"):
        out.pop(name, None)  # as a user's shell: gitnetic picks the threads (num_threads) and the policy
    out.update(
        PATH=f"{VENV_BIN}{os.pathsep}{out.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        WANDB_MODE="offline",
        DVC_NO_ANALYTICS="1",
        GIT_AUTHOR_NAME="bench",
        GIT_AUTHOR_EMAIL="bench@example.invalid",
        GIT_COMMITTER_NAME="bench",
        GIT_COMMITTER_EMAIL="bench@example.invalid",
        **extra,
    )
    return out


def sh(*cmd: str, cwd: Path, extra: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env(**(extra or {})), capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return proc.stdout + proc.stderr


def make_repo(root: Path, steps: int, max_bytes: int) -> None:
    root.mkdir(parents=True)
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy2(REPO / name, root / name)
    for name in ("gitnetic", "configs"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    params = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
    params["corpus"]["max_bytes"] = max_bytes
    params["train"].update(
        max_steps=steps, warmup_steps=max(1, steps // 10), val_check_interval=steps, save_step_frequency=steps
    )
    params["evaluate"]["completion_samples"] = 0
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    for cmd in (("git", "init", "-q"), ("dvc", "init", "-q"), ("dvc", "config", "core.autostage", "false")):
        sh(*cmd, cwd=root)
    for message in ("pipeline", "baseline"):  # DVCLive needs a commit to start from
        if message == "baseline":
            sh("dvc", "repro", cwd=root)
        sh("git", "add", "-A", cwd=root)
        sh("git", "commit", "-qm", message, cwd=root)


def run_round(root: Path, name: str, jobs: int, log_every: int, extra: dict[str, str]) -> float:
    """Queue the two experiments, run them with ``-j jobs``; the wall seconds until both are done."""
    for lr in LEARNING_RATES:
        sh("dvc", "exp", "run", "--queue", "-n", f"{name}-{lr}", "-S", f"train.learning_rate={lr}",
           "-S", f"train.log_every_n_steps={log_every}", cwd=root)  # fmt: skip
    start = time.perf_counter()
    sh("dvc", "queue", "start", "-j", str(jobs), cwd=root, extra=extra)
    # Watch git refs and processes, not `dvc queue status`: that sends control messages through the
    # queue's file broker, and a worker that reads one half written crashes (seen in this bench).
    names = {f"{name}-{lr}" for lr in LEARNING_RATES}
    while not names <= exp_names(root):
        if time.perf_counter() - start > 30 and not queue_workers(root):
            raise SystemExit(f"an experiment failed:\n{sh('dvc', 'queue', 'status', cwd=root)}")
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    while queue_workers(root):  # the next round starts its own workers, with its own environment
        time.sleep(0.5)
    return seconds


def run_direct(root: Path, jobs: int, extra: dict[str, str]) -> float:
    """``--direct``: the two trainings as bare ``python -m gitnetic train`` processes (no DVC, no
    checkpoints or logs), ``jobs`` at a time; the wall seconds. Isolates what the cores do."""
    cmds = [
        [sys.executable, "-m", "gitnetic", "train", "--config", "params.yaml:train", "--learning_rate", lr,
         "--save_dir", "", "--dvclive_dir", "", "--progress_bar_refresh_rate", "0"]
        for lr in LEARNING_RATES
    ]  # fmt: skip
    start = time.perf_counter()
    for batch in (cmds[:1], cmds[1:]) if jobs == 1 else (cmds,):
        procs = [
            subprocess.Popen(
                c, cwd=root, env=env(**extra), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for c in batch
        ]
        if any(p.wait() for p in procs):
            raise SystemExit("a training failed")
    return time.perf_counter() - start


def eval_metrics(root: Path, name: str) -> dict:
    refs = sh("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=root).split()
    ref = next(r for r in refs if r.rsplit("/", 1)[-1] == name)
    return json.loads(sh("git", "show", f"{ref}:metrics/eval.json", cwd=root))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="Training steps of each experiment.")
    parser.add_argument("--max_bytes", type=int, default=1_500_000, help="Corpus size (bytes).")
    parser.add_argument("--spinning", action=argparse.BooleanOptionalAction, default=True,
                        help="Also run the parallel round with OMP_WAIT_POLICY=ACTIVE (the old behaviour).")  # fmt: skip
    parser.add_argument(
        "--direct",
        action="store_true",
        help="Time bare train processes instead of DVC's queue (the cores' part alone, no DVC overhead).",
    )
    parser.add_argument(
        "--workdir",
        default=None,
        help="Keep the repository here (default: a temp dir); reused when run again.",
    )
    args = parser.parse_args()

    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="exp-queue-"))
    root = work / "repo"
    if (root / "dvc.lock").is_file():  # a --workdir of an earlier run: keep its baseline, drop the rest
        print(f"reusing the baseline in {root}")
        sh("dvc", "queue", "remove", "--all", cwd=root)
        sh("dvc", "exp", "remove", "--all-commits", cwd=root)
        shutil.rmtree(root / ".dvc" / "cache" / "runs", ignore_errors=True)  # or DVC would not train
    else:
        print(f"building the baseline in {root} (corpus {args.max_bytes:,} bytes, {args.steps} steps) ...")
        make_repo(root, args.steps, args.max_bytes)
    rounds = [("seq", 1, {}), ("par", 2, {})]
    if args.spinning:
        rounds.append(("spin", 2, {"OMP_WAIT_POLICY": "ACTIVE"}))
    times = {}
    for i, (name, jobs, extra) in enumerate(rounds):
        how = "python -m gitnetic train" if args.direct else "dvc queue start"
        print(f"{name}: two trainings, {how}, {jobs} at a time {extra or ''}... ", end="", flush=True)
        times[name] = (
            run_direct(root, jobs, extra) if args.direct else run_round(root, name, jobs, 11 + i, extra)
        )
        print(f"{times[name]:.1f} s  (load average now {os.getloadavg()[0]:.1f})")
    for lr in LEARNING_RATES if not args.direct else ():
        results = {name: eval_metrics(root, f"{name}-{lr}") for name, _, _ in rounds}
        assert all(r == results["seq"] for r in results.values()), f"learning_rate {lr}: results differ"
    if not args.direct:
        print("every round gave bit-identical metrics/eval.json per learning rate")
    print(f"parallel (-j 2) throughput: {times['seq'] / times['par']:.2f}x sequential (goal >= 0.9)")
    if "spin" in times:
        print(f"parallel with spinning OpenMP threads: {times['seq'] / times['spin']:.2f}x sequential")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
