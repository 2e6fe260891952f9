"""The first code of every sandboxed sample: isolate this process, drop privileges, then run the sample.

Started by :mod:`gitnetic.benchmark.sandbox` as ``python -I sandbox_boot.py`` (isolated mode: no
environment variables, no user site, no script folder on ``sys.path``), so it uses the standard library
only and never imports gitnetic. It reads one JSON header line and the program from stdin, then:

1. ``unshare`` new network, mount, PID, IPC and UTS namespaces (``mode == "root"``), or the same plus a
   user namespace when gitnetic is not root (``mode == "userns"``); ``mode == "none"`` isolates nothing
   (the harness has already warned).
2. forks: the child is PID 1 of the new PID namespace, so when it dies the kernel kills every process
   it left behind (a daemon that left the session included). The parent reports the child's pid to the
   harness (which kills it at the timeout) and waits, exiting with the child's status.
3. the child mounts a fresh ``/proc``, re-exposes the interpreter's folders under private parents
   (e.g. ``/root``) to the sandbox uid, makes every mount read-only, mounts a small private tmpfs on its
   work folder and enters it, sets the resource limits, drops to the sandbox uid/gid with no
   supplementary groups, no capabilities and ``no_new_privs``, and leaves the process group.
4. runs the program; only if it returned normally does it write the harness's nonce to the result pipe.
   The nonce never appears in the program text, argv or environment, so ``sys.exit(0)``/``os._exit(0)``
   inside the sample cannot fake a pass.
"""

import ctypes
import json
import os
import resource
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC = 2, 4, 8
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_MOUNT_SETATTR = 442  # the same number on every architecture (added in Linux 5.12)
MOUNT_ATTR_RDONLY, AT_RECURSIVE, AT_FDCWD = 0x1, 0x8000, -100
SETUP_FAILED = 111  # exit status of a setup failure (the harness reports it as such)

libc = ctypes.CDLL(None, use_errno=True)


def check(result, what):
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


class MountAttr(ctypes.Structure):
    _fields_ = [(n, ctypes.c_uint64) for n in ("attr_set", "attr_clr", "propagation", "userns_fd")]


def mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    check(libc.mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {target}")


def read_only_everywhere():
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    result = libc.syscall(
        ctypes.c_long(SYS_MOUNT_SETATTR), ctypes.c_int(AT_FDCWD), b"/", ctypes.c_uint(AT_RECURSIVE),
        ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
    )
    check(result, "mount_setattr / read-only")


def expose(paths):
    """Make ``paths`` (the interpreter's folders) reachable by the sandbox uid: each private ancestor
    (no ``o+x``, e.g. ``/root``) is covered, inside this mount namespace only, by a tmpfs holding bind
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


def set_limits(limits, nproc_extra):
    for name, value in limits.items():
        which = getattr(resource, name)
        if name == "RLIMIT_NPROC":
            value += nproc_extra
        if name == "RLIMIT_CPU":
            resource.setrlimit(which, (value, value + 1))  # SIGXCPU, then SIGKILL a second later
        else:
            resource.setrlimit(which, (value, value))


def user_process_count(uid):
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count


def drop_capabilities():
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()
    check(libc.capset(header, data), "capset")


def isolate_child(head):
    """In the new namespaces: filesystem, limits, identity. Runs as root (or userns root) until the end."""
    check(libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl pdeathsig")
    mode, uid, gid, workdir = head["mode"], head["uid"], head["gid"], head["workdir"]
    nproc_extra = 0
    if mode != "none":
        mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        if mode == "root":
            expose(head["expose"])
        read_only_everywhere()
        owner = f",uid={uid},gid={gid}" if mode == "root" else ""
        mount("tmpfs", workdir, "tmpfs", MS_NOSUID | MS_NODEV, f"mode=700,size={head['disk']},nr_inodes=4096{owner}")
    if mode != "root":
        nproc_extra = user_process_count(os.getuid())  # RLIMIT_NPROC counts all of this uid's processes
    os.chdir(workdir)
    set_limits(head["limits"], nproc_extra)
    if mode == "root":
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)  # from uid 0 to another uid: every capability is dropped
    elif mode == "userns":
        drop_capabilities()
    check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl no_new_privs")
    if mode != "none":  # (without namespaces this process already leads its own session)
        os.setsid()  # kill(0, ...) and killpg(getpgrp()) reach only the sample's own processes


def enter_namespaces(mode):
    if mode == "root":
        check(libc.unshare(CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
    elif mode == "userns":
        uid, gid = os.getuid(), os.getgid()
        flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
        check(libc.unshare(flags), "unshare")
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as fh:
                fh.write(text)
    if mode != "none":
        mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing mounted here is seen outside


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


def main():
    head = json.loads(sys.stdin.buffer.readline())
    program = sys.stdin.buffer.read().decode("utf-8")
    devnull = os.open("/dev/null", os.O_RDONLY)
    os.dup2(devnull, 0)  # stdin closed for the sample: reads see end of file
    os.close(devnull)
    nonce, result_fd, pid_fd = head.pop("nonce").encode(), head["result_fd"], head["pid_fd"]
    try:
        enter_namespaces(head["mode"])
    except OSError as exc:
        os.write(2, f"sandbox setup failed: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    child = os.fork() if head["mode"] != "none" else 0
    if child:  # outside the namespace: report the child's pid, wait, pass its status on
        os.close(result_fd)
        os.write(pid_fd, f"{child}\n".encode())
        os.close(pid_fd)
        _, status = os.waitpid(child, 0)
        os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    os.close(pid_fd)
    try:
        isolate_child(head)
    except OSError as exc:
        os.write(2, f"sandbox setup failed: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    del head
    run_sample(program, nonce, result_fd)


if __name__ == "__main__":
    main()
