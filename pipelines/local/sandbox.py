"""A job host's private filesystem, as a SageMaker container has one: run a command in new user,
mount, PID and IPC namespaces, on a copy-on-write view of this machine that ends with it.

Run as a file by the runner's Python, standard library only (`pipelines.local.container` builds
the spec):

    python -I -S sandbox.py SPEC_JSON COMMAND [ARG...]

The new root is a tmpfs of ``spec["size"]`` (the job's scratch: every write outside ``/opt/ml``
lands there, so filling it is ENOSPC inside the job, never on the host). Each directory of the
machine is an overlay on it, the host's files the read-only lower layer, so a job reads what is
installed, writes what it likes and the host is untouched; directories that hold other mounts are
walked into, since an overlay in a user namespace cannot take a lower layer with mounts below it.
``masks`` (the runner's home, /root, /tmp, /run...) are fresh empty directories instead, with the
``keep`` directories inside them (the runner's Python, the environment cache) overlaid back.
``opt_ml`` is bound read-write at /opt/ml and ``hosts`` at /etc/hosts; /proc is the new PID
namespace's own, /sys the host's read-only, /dev a minimal one (null, zero, full, random, urandom,
tty, a new devpts, shm on the scratch). Then pivot_root, and the old root is detached: nothing
of the host is reachable but through those views.

The user namespace maps the caller to root (SageMaker jobs run as root): with root, host root's
files are the job's own (copy-on-write), other users' stay theirs; without root, a job cannot
write into directories it could not write outside (they belong to an unmapped root).

Processes: this one stays outside (so the runner's signals and exit status work as for any
child), forks PID 1 of the new namespace, which sets up the filesystem and forks the command as
PID 2. When the command ends, PID 1 ends, and the kernel kills whatever it left behind. A SIGTERM
to the process group reaches the command (PID 1 ignores it, as the kernel has init do); a killed
command is reported by this process dying of the same signal. Exit status 125: the sandbox could
not be set up (the message says why).
"""
from __future__ import annotations

import ctypes
import json
import os
import platform
import signal
import sys

SETUP_FAILED = 125
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWIPC = 0x00020000, 0x10000000, 0x20000000, 0x08000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH, PR_SET_PDEATHSIG, AT_RECURSIVE, MOUNT_ATTR_RDONLY = 2, 1, 0x8000, 1
_SYSCALLS = {"x86_64": {"pivot_root": 155, "mount_setattr": 442}, "aarch64": {"pivot_root": 41, "mount_setattr": 442}}
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
_LINKS = {"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
          "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
_OWN = ("/proc", "/sys", "/dev")  # made here, never taken from the host

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


class SetupError(Exception):
    pass


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise SetupError(f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int = 0, data: str | None = None) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)),
           f"mount {fstype or 'bind'} {source or ''} at {target}")


def _syscall(name: str, *args) -> int:
    numbers = _SYSCALLS.get(platform.machine())
    if numbers is None:
        raise SetupError(f"no private filesystem on {platform.machine()} (known: {', '.join(_SYSCALLS)})")
    return libc.syscall(numbers[name], *args)


def _mount_points() -> list[str]:
    def unescape(field: str) -> str:  # mountinfo writes space, tab, newline and backslash as \ooo
        return field.encode().decode("unicode_escape").encode("latin-1").decode(errors="surrogateescape")

    with open("/proc/self/mountinfo") as info:
        return [unescape(line.split()[4]) for line in info]


def _inside(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


class _Root:
    """The new root, built under the scratch tmpfs at `base`."""

    def __init__(self, base: str, mounts: list[str], masks: list[str]):
        self.base, self.mounts, self.masks = base, mounts, masks
        self.path = f"{base}/root"
        self.layers = 0

    def at(self, host_path: str) -> str:
        return self.path + host_path

    def overlay(self, lower: str, target: str) -> None:
        """`target` shows `lower` copy-on-write, the copies going to the scratch."""
        self.layers += 1
        layer = f"{self.base}/layers/{self.layers}"
        os.makedirs(f"{layer}/upper")
        os.makedirs(f"{layer}/work")
        # userxattr: overlay metadata in user.* attributes, the only ones a user namespace may set
        _mount("overlay", target, "overlay", 0,
               f"lowerdir={_escape(lower)},upperdir={layer}/upper,workdir={layer}/work,userxattr")

    def copy_of(self, path: str) -> None:
        """The host directory `path` at its place: one overlay, or, where mounts or masks lie below it,
        a directory of its entries, each copied the same way."""
        target = self.at(path)
        below = [p for p in (*self.mounts, *self.masks) if _inside(p, path) and p != path]
        if not below:
            self.overlay(path, target)
            return
        try:
            entries = list(os.scandir(path))
        except PermissionError:  # a directory this user cannot list: as empty as it looks to them
            entries = []
        for entry in entries:
            source, place = entry.path, self.at(entry.path)
            if _inside(source, self.base):  # the scratch itself, where the job's directory lies
                os.mkdir(place)
            elif source in _OWN or source in self.masks:
                os.mkdir(place)
            elif entry.is_symlink():
                os.symlink(os.readlink(source), place)
            elif entry.is_dir(follow_symlinks=False):
                os.mkdir(place)
                self.copy_of(source)
            elif entry.is_file(follow_symlinks=False):  # read-only: a file cannot be an overlay
                open(place, "w").close()
                _mount(source, place, None, MS_BIND)
                _mount(None, place, None, MS_BIND | MS_REMOUNT | MS_RDONLY)


def _escape(path: str) -> str:
    """A path as an overlay option value (',' and ':' separate values and layers)."""
    return path.replace("\\", "\\\\").replace(",", "\\,").replace(":", "\\:")


def _build(spec: dict) -> None:
    """Make the new root and enter it (PID 1 of the new namespaces, before the command runs)."""
    masks = _outermost([m for m in spec["masks"] if m != "/" and os.path.isdir(m)])
    mounts = _mount_points()
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing done here reaches the host's mounts
    base = spec["scratch"]
    _mount("scratch", base, "tmpfs", MS_NOSUID | MS_NODEV, f"size={spec['size']},mode=0755")
    root = _Root(base, mounts, masks)
    os.mkdir(root.path)
    _mount(root.path, root.path, None, MS_BIND)  # pivot_root needs a mount point
    root.copy_of("/")
    for mask in sorted(masks):
        os.makedirs(root.at(mask), exist_ok=True)
        os.chmod(root.at(mask), 0o1777 if mask in ("/tmp", "/var/tmp") else 0o700 if mask == "/root" else 0o755)
    for kept in _outermost(spec["keep"]):
        if any(_inside(kept, mask) for mask in masks) and os.path.isdir(kept):
            os.makedirs(root.at(kept), exist_ok=True)
            root.overlay(kept, root.at(kept))
    _devices(root)
    _mount("/sys", root.at("/sys"), None, MS_BIND | MS_REC)
    attr = (ctypes.c_uint64 * 4)(MOUNT_ATTR_RDONLY, 0, 0, 0)
    if _syscall("mount_setattr", -100, root.at("/sys").encode(), AT_RECURSIVE, attr, ctypes.sizeof(attr)) != 0:
        libc.umount2(root.at("/sys").encode(), MNT_DETACH)  # no read-only /sys here: none at all
    _mount("proc", root.at("/proc"), "proc", MS_NOSUID | MS_NODEV)
    os.makedirs(root.at("/opt/ml"), exist_ok=True)
    _mount(spec["opt_ml"], root.at("/opt/ml"), None, MS_BIND)
    if spec.get("hosts"):
        _mount(spec["hosts"], root.at("/etc/hosts"), None, MS_BIND)
    old = root.at("/.old-root")
    os.mkdir(old)
    _check(_syscall("pivot_root", root.path.encode(), old.encode()), "pivot_root")
    os.chdir("/")
    _check(libc.umount2(b"/.old-root", MNT_DETACH), "detach the host's root")
    os.rmdir("/.old-root")


def _outermost(paths: list[str]) -> list[str]:
    """`paths` without those inside another one of them."""
    unique = sorted(set(p.rstrip("/") or "/" for p in paths))
    return [p for p in unique if not any(q != p and _inside(p, q) for q in unique)]


def _devices(root: _Root) -> None:
    dev = root.at("/dev")
    for name in _DEVICES:
        open(f"{dev}/{name}", "w").close()
        _mount(f"/dev/{name}", f"{dev}/{name}", None, MS_BIND)
    for name, target in _LINKS.items():
        os.symlink(target, f"{dev}/{name}")
    os.mkdir(f"{dev}/pts")
    _mount("devpts", f"{dev}/pts", "devpts", MS_NOSUID, "newinstance,ptmxmode=0666,mode=0620")
    os.mkdir(f"{dev}/shm")
    os.chmod(f"{dev}/shm", 0o1777)


def _enter_namespaces() -> None:
    uid, gid = os.geteuid(), os.getegid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC), "unshare")
    with open("/proc/self/setgroups", "w") as setgroups:  # required to map one's own group from inside
        setgroups.write("deny")
    with open("/proc/self/uid_map", "w") as uid_map:
        uid_map.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as gid_map:
        gid_map.write(f"0 {gid} 1")


def _init(spec: dict, argv: list[str], report: int) -> None:
    """PID 1: build the root, run the command, report its wait status, end (taking the rest along)."""
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        _build(spec)
        os.chdir(spec["cwd"])
    except (SetupError, OSError) as exc:
        print(f"[local runner] the job's private filesystem could not be set up: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    command = os.fork()
    if command == 0:
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)  # Python and the outer process changed these
        try:
            os.execvp(argv[0], argv)
        except OSError as exc:
            print(f"[local runner] cannot run {argv[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
            os._exit(127)
    while True:  # PID 1 also reaps the orphans the command leaves
        pid, status = os.waitpid(-1, 0)
        if pid == command:
            os.write(report, status.to_bytes(4, "little"))
            os._exit(0)


def main(argv: list[str]) -> None:
    spec, command = json.loads(argv[0]), argv[1:]
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # the runner died: so does the job
    if os.getppid() != spec["parent"]:  # it died before that took effect
        os._exit(SETUP_FAILED)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # a stop reaches the command; this process reports its end
    try:
        _enter_namespaces()
    except (SetupError, OSError) as exc:
        print(f"[local runner] the job's private filesystem could not be set up: {exc}", file=sys.stderr, flush=True)
        os._exit(SETUP_FAILED)
    reading, writing = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(reading)
        _init(spec, command, writing)
    os.close(writing)
    _, init_status = os.waitpid(init, 0)
    reported = os.read(reading, 4)
    if len(reported) < 4:  # the command never ran
        os._exit(os.waitstatus_to_exitcode(init_status) if os.WIFEXITED(init_status) else SETUP_FAILED)
    status = int.from_bytes(reported, "little")
    if os.WIFSIGNALED(status):  # die of the same signal, for the runner to see
        if os.WTERMSIG(status) != signal.SIGKILL:
            signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main(sys.argv[1:])
