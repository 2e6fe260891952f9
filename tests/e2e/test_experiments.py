"""``dvc exp run`` as people run experiments: killed and run again, queued two at a time, pushed and pulled.

One module-scoped repository (a copy of the tiny pipeline that ``test_pipeline.py`` reproduces once
per session), without the benchmark stage: test_pipeline.py runs and checks it, and here it would run in each of the five
reproductions and experiments without being asked anything (export then quotes no pass@k). The
experiments vary ``train.learning_rate``; an experiment is "the same run" as another when it differs
only in ``train.progress_bar_refresh_rate``: a trajectory-free param (same fingerprint, so the same
floats) that still changes DVC's params, so DVC really trains instead of restoring its run cache.
Each experiment's weights and ``metrics/eval.json`` are read from its commit (``dvc.lock`` -> the
DVC cache), so no test needs the workspace to hold a particular experiment.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from dvc_render.html import PAGE_HTML

from tests.e2e.test_pipeline import (
    TIMEOUT_S,
    commit,
    ran_stages,
    read_json,
    reproduced_repo,
    run,
    shard_digests,
)
from tests.helpers import REPO, assert_same_weights, exp_names, pipeline_env, queue_workers, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("e2e-exp")]

TEMPLATE = Path(".dvc") / "plots" / "offline.html"
STORE = Path(".dvc") / "tmp" / "gitnetic-resume"
LR_A, LR_B = "0.003", "0.004"


def drop_benchmark_stage(root: Path) -> None:
    """The repository's dvc.yaml without the benchmark stage (and export's input from it); its outputs
    and its dvc.lock entry gone too, as if it had never run. Export's lock entry goes as well: export
    ran with the benchmark's result, and DVC does not rerun a stage for a dependency it no longer has."""
    path = root / "dvc.yaml"
    pipeline = yaml.safe_load(path.read_text(encoding="utf-8"))
    benchmark = pipeline["stages"].pop("benchmark")
    export = pipeline["stages"]["export"]
    export["deps"] = [dep for dep in export["deps"] if dep != "metrics/benchmark.json"]
    path.write_text(yaml.safe_dump(pipeline, sort_keys=False), encoding="utf-8")
    lock_path = root / "dvc.lock"
    lock = yaml.safe_load(lock_path.read_text(encoding="utf-8"))
    del lock["stages"]["benchmark"], lock["stages"]["export"]
    lock_path.write_text(yaml.safe_dump(lock, sort_keys=False), encoding="utf-8")
    for out in benchmark.get("outs", []) + benchmark.get("metrics", []):
        out_path = root / (out if isinstance(out, str) else next(iter(out)))
        if out_path.is_dir():
            shutil.rmtree(out_path)
        else:
            out_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """test_pipeline.py's reproduced repository (a copy: the full repro runs once per session), the
    benchmark stage dropped; the `dvc repro` below then runs only export, whose input that was."""
    root = tmp_path_factory.mktemp("exp") / "repo"
    reproduced_repo(tmp_path_factory, root)
    drop_benchmark_stage(root)
    (root / TEMPLATE).parent.mkdir(parents=True)
    shutil.copy2(REPO / TEMPLATE, root / TEMPLATE)  # the project's offline plot page (.dvc/config)
    run("dvc", "config", "plots.html_template", str(TEMPLATE.relative_to(".dvc")), cwd=root)
    assert ran_stages(run("dvc", "repro", cwd=root)) == {"export"}
    commit(root, "baseline")
    return root


def exp_ref(root: Path, name: str) -> str:
    refs = run("git", "for-each-ref", "--format=%(refname)", "refs/exps", cwd=root).split()
    found = [ref for ref in refs if ref.rsplit("/", 1)[-1] == name]
    assert len(found) == 1, f"experiment {name} not found once in {refs}"
    return found[0]


def cached(root: Path, md5: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5[:2] / md5[2:]


def exp_outputs(root: Path, name: str) -> dict:
    """An experiment's ``metrics/eval.json``, final weights and checkpoint file names, from its commit."""
    ref = exp_ref(root, name)
    lock = yaml.safe_load(run("git", "show", f"{ref}:dvc.lock", cwd=root))
    out = next(o for o in lock["stages"]["train"]["outs"] if o["path"] == "models/checkpoints")
    listing = json.loads(cached(root, out["md5"]).read_text(encoding="utf-8"))
    files = {entry["relpath"]: entry["md5"] for entry in listing}
    return {
        "eval": json.loads(run("git", "show", f"{ref}:metrics/eval.json", cwd=root)),
        "weights": cached(root, files["checkpoint_last.ckpt"]),
        "files": sorted(files),
    }


def wait_for_experiments(root: Path, names: list[str]) -> None:
    """Until the queue has committed the experiments ``names``; fail if its workers end first."""
    start = time.monotonic()
    while not set(names) <= exp_names(root):
        elapsed = time.monotonic() - start
        assert elapsed < TIMEOUT_S, "the queued experiments did not finish in time"
        if elapsed > 30 and not queue_workers(root):
            logs = run("dvc", "queue", "status", cwd=root)
            raise AssertionError(f"the queue workers ended without committing {names}:\n{logs}")
        time.sleep(1)


def start_queue(root: Path, jobs: int) -> None:
    """`dvc queue start -j jobs`, returned from as soon as the command ends; fail if it fails.

    Why not :func:`run`: the daemon that runs the workers inherits the command's stdout and stderr, so
    reading them to the end waits for the workers, and dvc-task's monitor stops an idle worker only
    after its 10 s poll: that long idle, after the last experiment, on every run of the test."""
    with tempfile.TemporaryFile(mode="w+") as out:
        proc = subprocess.run(
            ["dvc", "queue", "start", "-j", str(jobs)], cwd=root, env=pipeline_env(),
            stdout=out, stderr=subprocess.STDOUT, text=True, timeout=TIMEOUT_S, check=False,
        )  # fmt: skip
        out.seek(0)
        assert proc.returncode == 0, f"dvc queue start failed ({proc.returncode}):\n{out.read()[-4000:]}"


def stop_queue_workers(root: Path) -> None:
    """SIGTERM to the queue's workers once their experiments are committed: Celery's warm shutdown
    (a running task finishes first), then the broker cleanup DVC does when the monitor stops them."""
    import psutil

    workers = queue_workers(root)
    for worker in workers:
        with contextlib.suppress(psutil.Error):
            worker.terminate()
    _, alive = psutil.wait_procs(workers, timeout=TIMEOUT_S)
    assert not alive, f"queue workers still running: {alive}"


def run_and_kill(cmd: list[str], root: Path, at_step: int) -> str:
    """Run ``cmd``; kill -9 its train process once the resume store holds its step ``at_step``; its output."""
    import psutil

    def entries() -> set[Path]:
        return set((root / STORE).glob(f"*/step-{at_step}"))

    others = entries()  # other killed runs' entries
    proc = subprocess.Popen(
        cmd, cwd=root, env=pipeline_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_until(lambda: bool(entries() - others), proc, f"kept step {at_step}", TIMEOUT_S)
    for child in psutil.Process(proc.pid).children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "gitnetic" in child.cmdline() and "train" in child.cmdline():
                child.kill()
    output = proc.communicate(timeout=TIMEOUT_S)[0]
    assert proc.returncode != 0, output[-4000:]
    return output


def resumed_step(output: str) -> int:
    found = re.search(r"resuming this run from \S+ \(step (\d+)\)", output)
    assert found and "interrupted at step" in output, output[-4000:]
    return int(found.group(1))


@pytest.fixture(scope="module")
def interrupted(repo: Path) -> dict:
    """Experiment ``a`` killed in the workspace, ``b`` killed in ``--temp`` while ``a``'s checkpoints
    wait in the store, then both run again; also the baseline's metrics and shards (``"baseline"``)."""
    baseline = {"eval": read_json(repo / "metrics" / "eval.json"), "shards": shard_digests(repo)}
    cmds = {
        name: ["dvc", "exp", "run", *temp, "-S", f"train.learning_rate={lr}", "-n", name]
        for name, lr, temp in (("a", LR_A, []), ("b", LR_B, ["--temp"]))
    }
    killed = {name: run_and_kill(cmd, repo, at_step=12) for name, cmd in cmds.items()}
    # another experiment does not take a's checkpoints: b started fresh beside them
    assert "starting fresh" in killed["b"] and "interrupted at step" not in killed["b"], killed["b"][-4000:]
    assert len(list((repo / STORE).iterdir())) == 2, "each killed run leaves its own resume entry"
    outputs: dict = {name: run(*cmd, cwd=repo) for name, cmd in cmds.items()}
    assert not (repo / STORE).exists(), "a completed run must remove its resume entry"
    return {**outputs, "baseline": baseline}


def test_killed_experiment_resumes_from_the_step_reached(repo: Path, interrupted: dict) -> None:
    """Also what test_pipeline.py once asked of its own `dvc exp run`: an experiment on a train param
    re-runs training and the later stages only (the shards stay), changes the metrics, and `dvc exp
    show` lists it with its param and perplexity (pass@1 in `dvc exp show`: test_pipeline.py)."""
    for name in ("a", "b"):
        assert resumed_step(interrupted[name]) >= 12
        assert "starting fresh" not in interrupted[name]
        assert ran_stages(interrupted[name]) == {"train", "evaluate", "export"}  # no benchmark stage here
    baseline = interrupted["baseline"]
    assert shard_digests(repo) == baseline["shards"]
    assert read_json(repo / "metrics" / "eval.json") != baseline["eval"]
    text = run("dvc", "exp", "show", "--json", cwd=repo)
    assert LR_A in text and "perplexity" in text
    table = json.loads(text)
    shown = [
        (rev["name"], rev["data"]["metrics"]["metrics/eval.json"]["data"])
        for row in table
        for group in row.get("experiments") or []
        for rev in group["revs"]
    ]
    assert sorted(name for name, _ in shown) == ["a", "b"], shown  # each once, no half-run entry
    for name, metrics in shown:
        assert metrics == exp_outputs(repo, name)["eval"] and metrics["perplexity"] > 1
    assert "up to date" in run("dvc", "status", cwd=repo).lower()  # the workspace holds a, complete


def test_queued_experiments_equal_each_run_alone(repo: Path, interrupted: dict) -> None:
    """``a`` and ``b`` again, queued and run two at a time, each from its first step: bit-identical to
    the runs above (which were killed and resumed: so each also equals an uninterrupted run)."""
    # The workspace holds a's finished run, and qa differs from a only in a trajectory-free param: queued
    # from there, qa resumed a's last checkpoint and trained nothing. From the baseline, both train.
    run("git", "reset", "-q", "--hard", cwd=repo)
    run("dvc", "checkout", "-q", "--force", cwd=repo)
    for name, lr in (("qa", LR_A), ("qb", LR_B)):
        run("dvc", "exp", "run", "--queue", "-S", f"train.learning_rate={lr}",
            "-S", "train.progress_bar_refresh_rate=7", "-n", name, cwd=repo)  # fmt: skip
    start_queue(repo, jobs=2)
    wait_for_experiments(repo, ["qa", "qb"])
    stop_queue_workers(repo)
    for name in ("qa", "qb"):
        log = run("dvc", "queue", "logs", name, cwd=repo)
        assert "starting fresh" in log and "resuming" not in log, log[-4000:]
    for alone, queued in (("a", "qa"), ("b", "qb")):
        x, y = exp_outputs(repo, alone), exp_outputs(repo, queued)
        assert x["eval"] == y["eval"]
        assert_same_weights(x["weights"], y["weights"])
        assert x["files"] == y["files"]


def rendered_dom(page: Path) -> str:
    """``page`` as headless Chromium has it after its scripts ran, with every network request failing."""
    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if browser is None:
        pytest.skip("Chromium is not installed (scripts/install-chromium.sh installs it as root)")
    proc = subprocess.run(
        [
            browser, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",  # no network at all
            "--virtual-time-budget=20000", "--dump-dom", page.as_uri(),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def drawn_lines(dom: str) -> dict[str, dict[tuple[str, str], int]]:
    """Per plot on the page: ``{(rev, file): points}`` of each line vega drew (an SVG path)."""
    plots: dict[str, dict[tuple[str, str], int]] = {}
    for part in re.split(r'<div id="(?=[^"]*" class="vega-embed)', dom)[1:]:
        lines = plots.setdefault(part.split('"', 1)[0], {})
        for label, path in re.findall(
            r'<path aria-label="([^"]*)"[^>]*aria-roledescription="line mark" d="([^"]*)"', part
        ):
            fields = dict(item.split(": ", 1) for item in label.split("; "))
            lines[(fields["rev"], fields.get("filename", ""))] = path.count("L") + 1
    return plots


def test_plots_diff_of_two_experiments_renders_offline(repo: Path, interrupted: dict, tmp_path: Path) -> None:
    """`dvc plots diff a b` with the project's template draws the loss, val loss and tokens/s curves of
    both experiments in a browser that cannot reach the network; DVC's own page draws nothing there."""
    run("dvc", "plots", "diff", "a", "b", "-o", str(tmp_path / "ours"), cwd=repo)
    plots = drawn_lines(rendered_dom(tmp_path / "ours" / "index.html"))
    loss, speed = plots.get("loss", {}), plots.get("throughput", {})
    curves = {(rev, f) for rev in ("a", "b") for f in ("train/loss.tsv", "val/loss.tsv")}
    assert set(loss) == curves, plots
    assert all(loss[(rev, "train/loss.tsv")] >= 20 and loss[(rev, "val/loss.tsv")] >= 2 for rev in "ab"), loss
    assert {rev for rev, _ in speed} == {"a", "b"} and min(speed.values()) >= 20, speed

    (tmp_path / "dvc.html").write_text(PAGE_HTML, encoding="utf-8")  # DVC's page: scripts from a CDN
    run("dvc", "plots", "diff", "a", "b", "-o", str(tmp_path / "theirs"),
        "--html-template", str(tmp_path / "dvc.html"), cwd=repo)  # fmt: skip
    assert not any(drawn_lines(rendered_dom(tmp_path / "theirs" / "index.html")).values())


def test_experiment_travels_through_git_and_dvc_remotes(
    repo: Path, interrupted: dict, tmp_path: Path
) -> None:
    """`dvc exp push` to a git remote and a DVC remote; another clone pulls the experiment, `dvc exp
    apply` gives its params, metrics and checkpoints, `dvc repro` has nothing to do, `generate` runs."""
    origin, storage = tmp_path / "origin.git", tmp_path / "storage"
    run("git", "init", "-q", "--bare", str(origin), cwd=tmp_path)
    run("git", "remote", "add", "origin", str(origin), cwd=repo)
    run("git", "push", "-q", "origin", "HEAD:refs/heads/main", cwd=repo)
    run("dvc", "remote", "add", "--local", "-d", "storage", str(storage), cwd=repo)
    run("dvc", "exp", "push", "origin", "a", cwd=repo)  # the exp commit to git, its outputs to storage

    clone = tmp_path / "clone"
    run("git", "clone", "-q", "-b", "main", str(origin), str(clone), cwd=tmp_path)
    run("dvc", "remote", "add", "--local", "-d", "storage", str(storage), cwd=clone)
    run("dvc", "exp", "pull", "origin", "a", cwd=clone)
    run("dvc", "exp", "apply", "a", cwd=clone)
    expected = exp_outputs(repo, "a")
    params = yaml.safe_load((clone / "params.yaml").read_text(encoding="utf-8"))
    assert params["train"]["learning_rate"] == float(LR_A)
    assert json.loads((clone / "metrics" / "eval.json").read_text(encoding="utf-8")) == expected["eval"]
    checkpoints = clone / "models" / "checkpoints"
    assert sorted(p.name for p in checkpoints.iterdir()) == expected["files"]
    assert_same_weights(checkpoints / "checkpoint_last.ckpt", expected["weights"])
    assert ran_stages(run("dvc", "repro", cwd=clone)) == set()
    text = run(sys.executable, "-m", "gitnetic", "generate", "--model", "models/hf", "--prompt", "def ",
               "--max_new_tokens", "8", "--greedy", cwd=clone)  # fmt: skip
    assert "generate: " in text and " new tokens" in text, text
