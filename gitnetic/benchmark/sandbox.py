"""Run untrusted programs (model-written code plus its unit tests) isolated, one process per sample.

Model output is untrusted code. Each worker is one ``python -I -S`` process (isolated mode, scrubbed
environment, its own session) running :mod:`gitnetic.benchmark.sandbox_boot`, which isolates itself
once and then forks every sample into fresh namespaces (it says how); the two sides talk in the messages
of :mod:`gitnetic.benchmark.sandbox_protocol`, defined once for both. In short:

* as root (CI, containers): network (loopback only), mount, PID, IPC and UTS namespaces for the worker;
  per sample new mount, PID and IPC namespaces, every mount read-only except a small private tmpfs as
  its work folder, stdin at end of file, output capped, and a dedicated unprivileged uid/gid per worker
  (a block no other sandbox on the machine holds and no process uses, so its ``RLIMIT_NPROC`` counts only
  the sample's processes), without capabilities or supplementary groups, under ``no_new_privs``;
* not root: the same namespaces inside a user namespace where the kernel allows it;
* otherwise: resource limits and a fresh temporary folder only, and a one-line warning says what is
  not isolated.

Always: rlimits on CPU seconds, address space, file size, open files and processes; the sample is
PID 1 of its PID namespace, so when it ends or is killed at the timeout every process it started dies
with it (a daemon that left the session included). A sample **passes** only when its program returned
normally and the bootstrap then wrote a per-request random nonce to a separate pipe: the nonce is in no
file, argv or environment variable, so ``sys.exit(0)`` or ``os._exit(0)`` before the tests cannot pass.
(It does sit in the interpreter's memory, so code written to dig it out of the bootstrap's frame could
forge a pass: the score is not a security boundary; the isolation is.)

A worker that stops answering (timeout plus a grace period) is killed whole (it is PID 1 of its PID
namespace) and replaced at its next sample.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import queue
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from gitnetic.benchmark.params import SandboxParams
from gitnetic.benchmark.sandbox_protocol import (
    PASSED,
    TIMED_OUT,
    Answer,
    Header,
    Request,
    Started,
    last_line,
    parse_pid,
    process_uids,
)
from gitnetic.common.errors import ConfigError, GitneticError

__all__ = ["Outcome", "Sandbox", "SandboxError"]

logger = logging.getLogger(__name__)

BOOT = Path(__file__).with_name("sandbox_boot.py")
GRACE_SECONDS = 5.0  # after the kill, how long the kernel may take to tear the process tree down
ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/nonexistent", "PYTHONHASHSEED": "0"}


class SandboxError(GitneticError):
    """The sandbox cannot run samples here (no usable interpreter, its uids are taken, ...)."""


@dataclass
class Outcome:
    """How one sample ended: ``passed``, ``failed`` or ``timed out``, with the error's last line."""

    status: str
    detail: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASSED


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
    return {uid for uid in process_uids() if first <= uid < first + count}


UID_BLOCK = 1000  # uids per sandbox: the most workers one sandbox may have
UID_BLOCKS = 100  # sandboxes that may run at once on one machine (tests in parallel, several stages)


def _claim_uids(first: int, workers: int) -> tuple[int, int]:
    """A block of uids no other sandbox on this machine holds (an flock per block, held while the
    sandbox lives) and no running process uses; returns its first uid and the lock's descriptor."""
    if workers > UID_BLOCK:
        raise ConfigError(f"--workers is at most {UID_BLOCK}, got {workers}")
    for block in range(UID_BLOCKS):
        base = first + block * UID_BLOCK
        fd = os.open(
            Path(tempfile.gettempdir()) / f"gitnetic-sandbox-uids-{base}.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        if not _uids_in_use(base, workers):
            return base, fd
        os.close(fd)
    raise SandboxError(
        f"no free block of {workers} uids from --sandbox_uid {first} (each held by another sandbox or "
        "used by running processes); pass another --sandbox_uid so that samples share a uid with nothing else"
    )


class Sandbox:
    """Runs programs isolated, ``params.num_workers`` at a time; use as a context manager."""

    def __init__(self, params: SandboxParams) -> None:
        self.params = params
        self.root = os.geteuid() == 0
        workers = params.num_workers
        self.first_uid, self._uid_lock = (
            _claim_uids(params.sandbox_uid, workers) if self.root else (None, None)
        )
        self.tmp = Path(tempfile.mkdtemp(prefix="gitnetic-sandbox-"))
        self.tmp.chmod(0o711)  # the sandbox uids pass through to their own folder, list nothing
        self.mode = "root" if self.root else "userns"
        self.servers: queue.Queue[_Server] = queue.Queue()
        self._all: list[_Server] = []
        try:
            self.mode = self._probe()
            for slot in range(1, workers):
                self._add(slot)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        for server in self._all:
            server.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
        if self._uid_lock is not None:
            os.close(self._uid_lock)  # releases the uid block
            self._uid_lock = None

    def _add(self, slot: int) -> _Server:
        server = _Server(self, slot)
        self._all.append(server)
        self.servers.put(server)
        return server

    def _probe(self) -> str:
        """Check once that isolation works here; fall back (with a one-line warning) when it does not."""
        probe = "import json, math, collections, itertools, re, hashlib\n"
        reason = self._try(probe)
        if reason is None:
            return self.mode
        if self.mode == "root":
            raise SandboxError(
                f"the sandbox cannot start as root here ({reason}); it needs unshare and mount "
                "(CAP_SYS_ADMIN) to isolate samples; run in a VM or a container with those rights"
            )
        self.mode = "none"
        reason2 = self._try(probe)
        if reason2 is not None:
            raise SandboxError(f"cannot run Python samples at all: {reason2}")
        logger.warning(
            "sandbox: no user namespaces here (%s): samples are NOT isolated from the network, this "
            "user's files and processes, or daemons that leave their session; only rlimits and the "
            "timeout apply",
            reason,
        )
        return self.mode

    def _try(self, program: str) -> str | None:
        """None when ``program`` passes in a fresh server of the current mode, else why not."""
        for server in self._all:
            server.stop()
        self._all.clear()
        self.servers = queue.Queue()
        server = self._add(0)
        try:
            outcome = server.run(program)
        except SandboxError as exc:
            return str(exc)
        return None if outcome.passed else (outcome.detail or outcome.status)

    def run(self, program: str) -> Outcome:
        """Run one program on a free worker; blocks until it ends or is killed."""
        server = self.servers.get()
        try:
            return server.run(program)
        finally:
            self.servers.put(server)

    def map(self, programs: Iterable[str]) -> Iterator[Outcome]:
        """Outcomes of ``programs`` in order, ``num_workers`` running at a time."""
        with ThreadPoolExecutor(self.params.num_workers) as pool:
            yield from pool.map(self.run, programs)


class _Server:
    """One worker: a ``sandbox_boot.py`` process that isolated itself once and forks each sample.

    Started on first use and again after it died or stopped answering (then it is killed whole: it is
    PID 1 of its PID namespace)."""

    def __init__(self, sandbox: Sandbox, slot: int) -> None:
        self.sandbox, self.slot = sandbox, slot
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # the server inside the namespaces (killing it kills them all)
        self.response = b""

    def _head(self, response_fd: int, pid_fd: int) -> Header:
        sandbox, params = self.sandbox, self.sandbox.params
        ident = sandbox.first_uid + self.slot if sandbox.first_uid is not None else None
        workdir = sandbox.tmp / str(self.slot)
        workdir.mkdir(exist_ok=True)
        return Header(
            mode=sandbox.mode,
            uid=ident,
            gid=ident,
            workdir=str(workdir),
            disk=f"{params.max_file_mb}m",
            limits=_limits(params),
            timeout=params.timeout,
            output_cap=params.max_output_kb << 10,
            expose=_interpreter_paths(),
            response_fd=response_fd,
            pid_fd=pid_fd,
        )

    def start(self) -> None:
        response_r, response_w = os.pipe()
        pid_r, pid_w = os.pipe()
        try:
            site = [] if self.sandbox.params.site_packages else ["-S"]
            self.proc = subprocess.Popen(
                [sys.executable, "-I", *site, str(BOOT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(response_w, pid_w),
                env=ENV,
                cwd="/",
                start_new_session=True,
            )
        finally:
            os.close(response_w)
            os.close(pid_w)
        self.response_fd = response_r
        assert self.proc.stdin is not None
        self.proc.stdin.write(self._head(response_w, pid_w).encode())
        self.proc.stdin.flush()
        line = self._line(time.monotonic() + 60)
        started = Started.decode(line) if line is not None else None
        self.pid = parse_pid(os.read(pid_r, 64)) if started is not None else None
        os.close(pid_r)
        if started is None or started.error:
            err = self._stderr()
            self.stop()
            raise SandboxError((started and started.error) or err or "the sandbox process ended at start")

    def _stderr(self) -> str:
        if self.proc is None or self.proc.stderr is None or self.proc.poll() is None:
            return ""
        return last_line(self.proc.stderr.read() or b"")

    def _line(self, deadline: float) -> bytes | None:
        """The next line on the response pipe, or None at EOF or the deadline."""
        while b"\n" not in self.response:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.response_fd], [], [], max(0.0, remaining))
            if not ready:
                return None
            chunk = os.read(self.response_fd, 1 << 16)
            if not chunk:
                return None
            self.response += chunk
        line, self.response = self.response.split(b"\n", 1)
        return line

    def run(self, program: str) -> Outcome:
        if self.proc is None or self.proc.poll() is not None:
            self.stop()
            self.start()
        assert self.proc is not None and self.proc.stdin is not None
        request = Request(nonce=secrets.token_hex(16), program=program).encode()
        start = time.monotonic()
        try:
            self.proc.stdin.write(request)
            self.proc.stdin.flush()
            line = self._line(start + self.sandbox.params.timeout + GRACE_SECONDS)
        except (BrokenPipeError, ValueError):
            line = None
        if line is None:  # the server died or hangs: kill it whole; the next run starts another
            self.stop()
            return Outcome(TIMED_OUT, "the sandbox stopped answering", time.monotonic() - start)
        answer = Answer.decode(line)
        if answer.setup_failed:
            raise SandboxError(answer.detail or "sample setup failed")
        return Outcome(answer.status, answer.detail, float(answer.seconds))

    def stop(self) -> None:
        """Kill the server and everything in its namespaces; race-free (see :func:`_kill_tree`)."""
        if self.proc is None:
            return
        _kill_tree(self.proc, self.pid)
        for stream in (self.proc.stdin, self.proc.stderr):
            with contextlib.suppress(OSError):
                stream.close() if stream is not None else None
        with contextlib.suppress(OSError):
            os.close(self.response_fd)
        self.proc, self.pid, self.response = None, None, b""


def _kill_tree(proc: subprocess.Popen[bytes], child: int | None) -> None:
    """Kill the bootstrap's session and the server's whole PID namespace, race-free.

    The bootstrap is stopped first so it cannot reap the server: the server's pid then names the server
    (alive or a zombie) and nothing else when it is killed. Killing PID 1 of a PID namespace kills every
    process in it."""
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
