"""The sandbox's wire protocol: every message round-trips, both sides agree on its fields, and the boot
script (run as ``python -I -S``) still loads nothing but the standard library and the protocol file."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from gitnetic.benchmark import sandbox_protocol
from gitnetic.benchmark.sandbox import BOOT, SandboxParams, _Server
from gitnetic.benchmark.sandbox_protocol import (
    Answer,
    Header,
    Request,
    Started,
    last_line,
    parse_pid,
    pid_line,
    process_uids,
)

HARNESS = Path(sys.modules[_Server.__module__].__file__)
PROTOCOL = Path(sandbox_protocol.__file__)


def parent_header(tmp_path: Path) -> Header:
    """The header the harness really sends, built without starting a worker."""
    sandbox = SimpleNamespace(first_uid=1_990_000_000, tmp=tmp_path, mode="root", params=SandboxParams())
    return _Server(sandbox, 3)._head(response_fd=7, pid_fd=9)


def attributes_read(path: Path, name: str) -> set[str]:
    """Every ``name.attr`` the module at ``path`` reads."""
    return {
        node.attr
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == name
    }


def test_every_message_round_trips(tmp_path) -> None:
    header = parent_header(tmp_path)
    assert None not in header and header.uid == 1_990_000_003 and header.limits["RLIMIT_NPROC"] == 8
    assert Header.decode(header.encode()) == header
    assert header.encode().endswith(b"\n") and header.encode().count(b"\n") == 1  # one line
    for message in (Started(), Started("unshare: Operation not permitted")):
        assert Started.decode(message.encode()) == message
    for answer in (Answer("passed", "", 0.25), Answer("failed", "sandbox setup failed: x", 1.5, True)):
        assert Answer.decode(answer.encode()) == answer
    assert parse_pid(pid_line(4242) + b"rest") == 4242 and parse_pid(b"") is None


def test_requests_are_framed_exactly(tmp_path) -> None:
    """The boot reads one frame and not a byte more; a closed or half-written pipe reads as the end."""
    first, second = Request("ab" * 16, "print('\\n')\n" * 1000), Request("cd" * 16, "x = 1\n")
    read, write = os.pipe()
    os.write(write, first.encode() + second.encode() + second.encode()[:5])
    os.close(write)
    assert [Request.read(read), Request.read(read), Request.read(read)] == [first, second, None]
    os.close(read)


def test_a_field_one_side_does_not_know_fails(tmp_path) -> None:
    fields = parent_header(tmp_path)._asdict()
    with pytest.raises(TypeError):
        Header.decode(json.dumps({**fields, "new_field": 1}).encode())
    del fields["output_cap"]
    with pytest.raises(TypeError):
        Header.decode(json.dumps(fields).encode())
    with pytest.raises(TypeError):
        Answer.decode(b'{"status": "passed", "detail": "", "seconds": 0, "exit_code": 0}\n')


def test_boot_and_harness_agree_on_every_field() -> None:
    """The harness sets every header field by name and the boot reads each; the boot reads every
    request field, and the harness every field of the answers: a field added to a message but used on
    one side only fails here."""
    calls = [
        node
        for node in ast.walk(ast.parse(HARNESS.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "Header"
    ]
    assert len(calls) == 1 and not calls[0].args
    assert {keyword.arg for keyword in calls[0].keywords} == set(Header._fields)
    assert attributes_read(BOOT, "head") == set(Header._fields)
    assert attributes_read(BOOT, "request") == set(Request._fields)
    assert attributes_read(HARNESS, "answer") == set(Answer._fields)
    assert attributes_read(HARNESS, "started") == set(Started._fields)


def test_boot_imports_only_the_standard_library_and_the_protocol() -> None:
    stdlib = sys.stdlib_module_names
    for path in (BOOT, PROTOCOL):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level], path  # relative
        assert {name.split(".")[0] for name in imported} - stdlib == set(), path
    preload = ast.literal_eval(
        next(
            node.value
            for node in ast.walk(ast.parse(BOOT.read_text()))
            if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "PRELOAD"
        )
    )
    assert set(preload) <= stdlib
    # as the harness starts it (isolated, no site-packages), loading it pulls in nothing else and
    # leaves sys.path as it was (samples are forks of it and import with that path)
    probe = (
        "import importlib.util, json, sys\n"
        "path, before = sys.argv[1], set(sys.modules)\n"
        "spec = importlib.util.spec_from_file_location('boot', path)\n"
        "path_before = list(sys.path)\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps({'modules': sorted(set(sys.modules) - before), 'path_kept': sys.path == path_before}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(BOOT)],
        capture_output=True,
        text=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        cwd="/",
        check=True,
    )
    loaded = json.loads(result.stdout)
    assert loaded["path_kept"]
    assert loaded["modules"] and {name.split(".")[0] for name in loaded["modules"]} - stdlib == set()


def test_shared_helpers() -> None:
    assert last_line(b"Traceback\n  File x\n\nAssertionError: no  \n\n \n") == "AssertionError: no"
    assert last_line(b"\xff" + b"y" * 400) == "\ufffd" + "y" * 299
    assert last_line(b" \n") == ""
    assert os.getuid() in set(process_uids())  # this process, at least
