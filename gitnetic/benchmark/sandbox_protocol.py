"""What the sandbox's harness (:mod:`gitnetic.benchmark.sandbox`) and its boot script (``sandbox_boot.py``)
say to each other, defined once for both sides.

**Standard library only, and no gitnetic imports**: the boot script runs as ``python -I -S`` (no
site-packages, no script folder on ``sys.path``), so it cannot import this as part of the gitnetic
package; it loads this one file by path from its own folder instead (``sandbox_boot.load_protocol`` says
why that keeps the isolation). The harness imports it as usual.

The conversation, per worker:

1. harness → boot, on the boot's stdin: one :class:`Header` JSON line (mode, uid, limits, pipes, ...);
2. boot → harness, on the pid pipe: the server's pid (:func:`pid_line`), then on the response pipe one
   :class:`Started` line (``error`` empty when the worker is ready);
3. per sample, harness → boot: a :class:`Request` frame on stdin (4-byte little-endian length, then
   JSON: the boot reads exactly one frame and no byte of the next); boot → harness: one :class:`Answer`
   JSON line on the response pipe.

Decoding is strict (``cls(**fields)``): a field one side writes and the other does not know, or a
missing one without a default, fails at once instead of being ignored or read as a default.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import NamedTuple

SETUP_FAILED = 111  # exit status of a sample (or boot) whose isolation could not be set up
PASSED, FAILED, TIMED_OUT = "passed", "failed", "timed out"  # Answer.status
LENGTH_BYTES = 4  # a Request frame's length prefix, little-endian


def _json_line(message: NamedTuple) -> bytes:
    return json.dumps(message._asdict()).encode() + b"\n"


class Header(NamedTuple):
    """How one worker isolates itself and its samples; sent once, before any request."""

    mode: str  # "root" | "userns" | "none"
    uid: int | None  # the samples' uid/gid (root mode), else None
    gid: int | None
    workdir: str  # the worker's folder; each sample's private tmpfs is mounted on it
    disk: str  # the tmpfs size, as mount(8) spells it ("16m")
    limits: dict[str, int]  # resource.RLIMIT_* name -> soft limit
    timeout: float  # wall-clock seconds per sample
    output_cap: int  # bytes of output kept per sample (the tail)
    expose: list[str]  # folders the interpreter reads, re-exposed to the sandbox uid
    response_fd: int  # the boot's end of the response pipe
    pid_fd: int  # the boot's end of the pid pipe

    def encode(self) -> bytes:
        return _json_line(self)

    @classmethod
    def decode(cls, line: bytes) -> Header:
        return cls(**json.loads(line))


class Started(NamedTuple):
    """The worker's first answer: ready for requests, or why it could not isolate itself."""

    error: str = ""

    def encode(self) -> bytes:
        return _json_line(self)

    @classmethod
    def decode(cls, line: bytes) -> Started:
        return cls(**json.loads(line))


class Request(NamedTuple):
    """One sample to run; the nonce is what it writes to pass (in no file, argv or environment)."""

    nonce: str
    program: str

    def encode(self) -> bytes:
        payload = json.dumps(self._asdict()).encode()
        return len(payload).to_bytes(LENGTH_BYTES, "little") + payload

    @classmethod
    def read(cls, fd: int) -> Request | None:
        """The next request on ``fd``, or None when the harness closed it (or left a frame unfinished)."""
        size = read_exact(fd, LENGTH_BYTES)
        payload = read_exact(fd, int.from_bytes(size, "little")) if size is not None else None
        return None if payload is None else cls(**json.loads(payload))


class Answer(NamedTuple):
    """How one sample ended; ``setup_failed`` when its isolation could not be set up (not its fault)."""

    status: str  # PASSED | FAILED | TIMED_OUT
    detail: str = ""  # the error's last line, or why it timed out
    seconds: float = 0.0
    setup_failed: bool = False

    def encode(self) -> bytes:
        return _json_line(self)

    @classmethod
    def decode(cls, line: bytes) -> Answer:
        return cls(**json.loads(line))


def pid_line(pid: int) -> bytes:
    return f"{pid}\n".encode()


def parse_pid(data: bytes) -> int | None:
    """The pid that :func:`pid_line` wrote first in ``data``, or None when there is none."""
    text = data.split(b"\n")[0]
    return int(text) if text.isdigit() else None


def read_exact(fd: int, n: int) -> bytes | None:
    """Exactly ``n`` bytes from ``fd`` (unbuffered: nothing after them is consumed), None at EOF."""
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def last_line(output: bytes) -> str:
    """The last non-blank line of a sample's (or the boot's) output: the error it ended with."""
    lines = [line.strip() for line in output.decode("utf-8", "replace").splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


def process_uids() -> Iterator[int]:
    """The owner uid of every process this ``/proc`` shows (processes that end meanwhile are skipped)."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                yield os.stat(f"/proc/{entry}").st_uid
            except OSError:
                continue
