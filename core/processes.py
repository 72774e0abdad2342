"""What the supervisor needs from the operating system: whether a port is free and who holds it,
children that die with their parent, and signals to a child's whole process group."""

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable

import psutil


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could bind the port now (SO_REUSEADDR, as servers bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> tuple[int, str] | None:
    """The pid and command line of the process listening on a TCP port (psutil), or None when
    that cannot be told (nobody listening, or a process of another user)."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except psutil.Error:
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return conn.pid, " ".join(psutil.Process(conn.pid).cmdline())
            except psutil.Error:
                return conn.pid, "?"
    return None


def describe_taken(port: int, owner: str) -> str:
    """`port 7233 (temporal) is taken by pid 42 (temporal server start-dev ...)`."""
    holder = port_holder(port)
    if holder is None:
        return f"port {port} ({owner}) is already in use"
    pid, command = holder
    command = " ".join(command.split())  # one line, whatever the arguments hold
    command = command if len(command) <= 100 else command[:97] + "..."
    return f"port {port} ({owner}) is already in use by pid {pid} ({command})"


_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def die_with_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` that has the kernel SIGKILL the child when this process dies, on Linux.

    Hand-written with ctypes because no maintained library in goalflow's dependencies sets
    PR_SET_PDEATHSIG. SIGKILL, not SIGTERM: the supervisor died without stopping its children,
    so nobody is left to kill one that ignores a SIGTERM. The signal survives exec (also of the
    Go Temporal server) but fires when the *thread* that forked exits: asyncio forks in the
    event loop's thread, which lives as long as the supervisor runs. libc is loaded here, in
    the parent, so the child between fork and exec only makes the call.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    parent = os.getpid()

    def preexec() -> None:
        if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
        if os.getppid() != parent:  # the parent died before the call: the signal never comes
            os._exit(1)

    return preexec


def signal_group(proc: asyncio.subprocess.Process, signum: int) -> None:
    """Signal the child's process group, so helpers it started go with it.

    Only while the child is not reaped: until then its pid, the group's id, cannot be reused.
    """
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signum)


def exit_now(code: int) -> None:
    """Flush and end a process that used a Temporal client, without interpreter finalization.
    The Temporal client's Rust threads can outlive the event loop, and finalizing under them now
    and then aborts the process with "PyGILState_Release: thread state ... must be current"
    (temporalio/sdk-python#300; seen here as exit -6 after `raise-budget` printed its answer, and
    as a worker's thread dump after Ctrl-C)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
