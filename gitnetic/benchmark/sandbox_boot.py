"""The sandbox's trusted side: one process per worker that isolates itself once, then forks each sample.

Started by :mod:`gitnetic.benchmark.sandbox` as ``python -I -S sandbox_boot.py`` (isolated mode: no
environment variables, no user site, no script folder on ``sys.path``), so it uses the standard library
only and never imports gitnetic; what it says to the harness is defined in ``sandbox_protocol.py``,
loaded by path from this folder (:func:`load_protocol`). It reads one ``Header`` line from stdin, then:

1. ``unshare`` new network (loopback only), mount, PID, IPC and UTS namespaces (``mode == "root"``), or
   the same inside a user namespace when gitnetic is not root (``mode == "userns"``); ``mode == "none"``
   isolates nothing (the harness has warned).
2. forks the **server**, PID 1 of that PID namespace (when it dies, the kernel kills every process in
   the namespace). The first process reports the server's pid to the harness and waits for it.
3. the server mounts a fresh ``/proc``, re-exposes the interpreter's folders under private parents (e.g.
   ``/root``) to the sandbox uid, and makes every mount read-only. It then serves ``Request`` frames on
   stdin one at a time, answering each with one ``Answer`` line on the response pipe.

Per request, the server forks a **launcher** that unshares fresh mount, PID and IPC namespaces and forks
the **sample**, PID 1 of its own PID namespace, which mounts its own ``/proc`` and a small private tmpfs
as its work folder, sets the resource limits, drops to the sandbox uid/gid with no supplementary
groups, no capabilities and ``no_new_privs``, closes every descriptor but its output and result pipes,
leaves the session and runs the program. Only if the program returned normally does it write the
request's nonce to the result pipe: the nonce is in no file, argv or environment variable, so
``sys.exit(0)``/``os._exit(0)`` before the tests cannot pass. At the timeout the server stops the
launcher (so it cannot reap the sample and free its pid), kills the sample (and with it its whole PID
namespace: daemons that left the session too), then the launcher.
"""

import ctypes
import importlib.util
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS = 1, 4, 38
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD = 0x1, 0x8000, -100
# imported once by the server, so that samples (forks of it) start with them loaded
PRELOAD = ("collections", "functools", "hashlib", "heapq", "itertools", "math", "re", "string", "typing")


def load_protocol():
    """``sandbox_protocol.py`` from this script's own folder, loaded by path: the one definition of the
    messages, shared with the harness without weakening the isolation.

    Importing it the usual way would need gitnetic on ``sys.path``: ``-I`` keeps the script folder off
    it and ``-S`` keeps site-packages (and gitnetic's install) off it, on purpose. Putting a folder back
    would hold for every sample too (each is a fork of this process), so a sample's ``import run`` could
    find gitnetic's modules, and importing the package would run gitnetic's ``__init__`` as root before
    the isolation. Loading exactly this one file by path changes no ``sys.path`` and registers nothing in
    ``sys.modules``; the file lies beside this script with the same owner and permissions, so it is
    trusted as much as this script is, and it is standard-library only (``tests/benchmark`` checks both).
    """
    path = os.path.join(os.path.dirname(os.path.realpath(__file__)), "sandbox_protocol.py")
    spec = importlib.util.spec_from_file_location("sandbox_protocol", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


protocol = load_protocol()
libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "propagation", "userns_fd")]


def mount(source, target, fstype, flags, data=None):
    def enc(s):
        return None if s is None else s.encode()

    check(
        libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}"
    )


def read_only_everywhere():
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    size = ctypes.c_size_t(ctypes.sizeof(attr))
    args = (ctypes.c_int(AT_FDCWD), b"/", ctypes.c_uint(AT_RECURSIVE), ctypes.byref(attr), size)
    check(libc.syscall(ctypes.c_long(SYS_MOUNT_SETATTR), *args), "mount_setattr / read-only")


def expose(paths):
    """Make ``paths`` (the interpreter's folders) reachable by the sandbox uid: each private ancestor
    (no ``o+x``, e.g. ``/root``) is covered, in this mount namespace only, by a tmpfs holding bind
    mounts of the needed children."""
    covers = {}
    for path in paths:
        parts = os.path.abspath(path).split("/")[1:]
        for i in range(len(parts) - 1):
            parent = "/" + "/".join(parts[: i + 1])
            if not os.stat(parent).st_mode & 0o001:
                covers.setdefault(parent, set()).add(parts[i + 1])
                break
    for parent, children in sorted(covers.items(), key=lambda item: -len(item[0])):
        fds = {name: os.open(os.path.join(parent, name), os.O_PATH) for name in children}
        mount("tmpfs", parent, "tmpfs", MS_NOSUID | MS_NODEV, "mode=755,size=64k")
        for name, fd in fds.items():
            os.mkdir(os.path.join(parent, name))
            mount(f"/proc/self/fd/{fd}", os.path.join(parent, name), None, MS_BIND | MS_REC)
            os.close(fd)


def user_process_count(uid):
    return sum(owner == uid for owner in protocol.process_uids())


def drop_capabilities():
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    check(libc.capset(header, data), "capset")


def enter_namespaces(mode):
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if mode == "root":
        check(libc.unshare(flags), "unshare")
    elif mode == "userns":
        uid, gid = os.getuid(), os.getgid()
        check(libc.unshare(flags | CLONE_NEWUSER), "unshare")
        for name, text in (
            ("setgroups", "deny"),
            ("uid_map", f"{uid} {uid} 1"),
            ("gid_map", f"{gid} {gid} 1"),
        ):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    if mode != "none":
        mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here is seen outside


def prepare_server(head):
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl pdeathsig")
    check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl dumpable")
    if head.mode != "none":
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if head.mode == "root":
            expose(head.expose)
        read_only_everywhere()
    for name in PRELOAD:
        __import__(name)


def isolate_sample(head, workdir, out_fd, result_fd):
    """In the sample (PID 1 of a fresh PID namespace): filesystem, limits, identity, descriptors."""
    check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl pdeathsig")
    mode, uid, gid = head.mode, head.uid, head.gid
    if mode != "none":
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        owner = f",uid={uid},gid={gid}" if mode == "root" else ""
        mount(
            "tmpfs",
            workdir,
            "tmpfs",
            MS_NOSUID | MS_NODEV,
            f"mode=700,size={head.disk},nr_inodes=4096{owner}",
        )
    os.chdir(workdir)
    nproc_extra = 0 if mode == "root" else user_process_count(os.getuid())  # NPROC counts the whole uid
    for name, value in head.limits.items():
        value += nproc_extra if name == "RLIMIT_NPROC" else 0
        hard = value + 1 if name == "RLIMIT_CPU" else value  # SIGXCPU, then SIGKILL a second later
        resource.setrlimit(getattr(resource, name), (value, hard))
    if uid is not None:  # gitnetic runs as root: the sample does not
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # from uid 0 to another uid: every capability is dropped
    elif mode == "userns":
        drop_capabilities()
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    os.setsid()  # kill(0, ...) and killpg(getpgrp()) reach only the sample's own processes
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)  # stdin: end of file
    os.dup2(out_fd, 1)
    os.dup2(out_fd, 2)
    keep = sorted({0, 1, 2, result_fd})
    for low, high in zip(keep, [*keep[1:], 1 << 20], strict=True):  # close_range(2): cheap
        os.closerange(low + 1, high)  # the server's request/response pipes above all


def run_sample(program, nonce, result_fd):
    try:
        code = compile(program, "<sample>", "exec")
        exec(code, {"__name__": "__main__", "__builtins__": __builtins__})  # noqa: S102 - the point
    except BaseException as exc:  # a failing test, SystemExit, KeyboardInterrupt: all failures
        last = f"{type(exc).__name__}: {exc}".splitlines()[0] if str(exc) else type(exc).__name__
        try:
            os.write(2, ("\n" + last[:500] + "\n").encode("utf-8", "replace"))
        except OSError:
            pass
        os._exit(1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    os.write(result_fd, nonce)
    os._exit(0)


def launch(head, workdir, request, out_w, result_w, pid_w):
    """The launcher (root, trusted): new namespaces for one sample, fork it, wait for it."""
    try:
        if head.mode != "none":
            check(libc.unshare(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
        child = os.fork()
        if child == 0:
            os.close(pid_w)
            try:
                isolate_sample(head, workdir, out_w, result_w)
            except OSError as exc:
                os.write(out_w, f"\nsandbox setup failed: {exc}\n".encode())
                os._exit(protocol.SETUP_FAILED)
            run_sample(request.program, request.nonce.encode(), result_w)
        os.write(pid_w, protocol.pid_line(child))
        for fd in (pid_w, out_w, result_w):
            os.close(fd)
        _, status = os.waitpid(child, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    except BaseException as exc:
        os.write(out_w, f"\nsandbox setup failed: {exc}\n".encode())
        os._exit(protocol.SETUP_FAILED)


def collect(fds, deadline, cap):
    """Read the sample's output (tail of ``cap`` bytes), result and pid pipes until EOF or deadline."""
    data = {fd: b"" for fd in fds}
    open_fds = set(fds)
    while open_fds:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return data, False
        ready, _, _ = select.select(list(open_fds), [], [], remaining)
        for fd in ready:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                open_fds.discard(fd)
            else:
                data[fd] = (data[fd] + chunk)[-cap:]
    return data, True


def serve_one(head, request):
    workdir = head.workdir
    if head.mode == "none":  # no private tmpfs: a fresh folder, owned by the sample's uid
        workdir = tempfile.mkdtemp(dir=workdir)
        if head.uid is not None:
            os.chown(workdir, head.uid, head.gid)
    try:
        return serve_in(head, workdir, request)
    finally:
        if workdir != head.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def serve_in(head, workdir, request):
    out_r, out_w = os.pipe()
    result_r, result_w = os.pipe()
    pid_r, pid_w = os.pipe()
    start = time.monotonic()
    launcher = os.fork()
    if launcher == 0:
        for fd in (out_r, result_r, pid_r):
            os.close(fd)
        launch(head, workdir, request, out_w, result_w, pid_w)
    for fd in (out_w, result_w, pid_w):
        os.close(fd)
    data, finished = collect((out_r, result_r, pid_r), start + head.timeout, head.output_cap)
    sample = protocol.parse_pid(data[pid_r])
    if not finished:
        os.kill(launcher, signal.SIGSTOP)  # cannot reap the sample now: its pid stays its own
    if sample is not None and (not finished or head.mode == "none"):
        try:  # PID 1 of its namespace: everything it started dies too (mode none: its session's group)
            os.killpg(sample, signal.SIGKILL) if head.mode == "none" else os.kill(sample, signal.SIGKILL)
        except OSError:
            pass
    if not finished:
        os.kill(launcher, signal.SIGKILL)
    _, status = os.waitpid(launcher, 0)
    if not finished and sample is not None:
        try:  # the killed sample was orphaned to this server (PID 1 here): reap it once it is gone
            os.waitpid(sample, 0)
        except ChildProcessError:
            pass
    for fd in (out_r, result_r, pid_r):
        os.close(fd)
    seconds = time.monotonic() - start
    if not finished:
        return protocol.Answer(protocol.TIMED_OUT, f"no result within {head.timeout:g} s", seconds)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)
    if code == 0 and request.nonce.encode() in data[result_r]:
        return protocol.Answer(protocol.PASSED, "", seconds)
    detail = protocol.last_line(data[out_r]) or (
        f"killed by signal {code - 128}" if code > 128 else f"exit status {code}"
    )
    if code == 0:
        detail = f"ended before its tests finished ({detail})"
    return protocol.Answer(protocol.FAILED, detail, seconds, setup_failed=code == protocol.SETUP_FAILED)


def serve(head):
    os.write(head.response_fd, protocol.Started().encode())
    while True:
        request = protocol.Request.read(0)
        if request is None:
            os._exit(0)  # the harness closed the request pipe: done
        os.write(head.response_fd, serve_one(head, request).encode())


def main():
    line = b""
    while not line.endswith(b"\n"):  # byte by byte: nothing of the first request may be buffered
        byte = os.read(0, 1)
        if not byte:
            os._exit(0)
        line += byte
    head = protocol.Header.decode(line)
    try:
        enter_namespaces(head.mode)
        server = os.fork() if head.mode != "none" else 0
    except OSError as exc:
        os.write(head.response_fd, protocol.Started(str(exc)).encode())
        os._exit(protocol.SETUP_FAILED)
    if server:  # outside the namespaces: report the server's pid, wait, pass its status on
        os.write(head.pid_fd, protocol.pid_line(server))
        os.close(head.pid_fd)
        os.close(head.response_fd)
        _, status = os.waitpid(server, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    os.close(head.pid_fd)
    try:
        prepare_server(head)
    except OSError as exc:
        os.write(head.response_fd, protocol.Started(str(exc)).encode())
        os._exit(protocol.SETUP_FAILED)
    serve(head)


if __name__ == "__main__":
    main()
