"""A small process supervisor: keep a few child processes alive, heal crashes, stop as one unit.

`make run` is a handful of long-running processes (Temporal dev server, worker, API, ...). A
crash of one should not take the others down: the supervisor restarts the dead child with
exponential backoff and says so. It gives up only when a child keeps dying right after it
starts — a broken config or a taken port that no restart will fix — and then names the child,
shows its last output, stops the rest and reports failure. SIGINT/SIGTERM stop everything.

The children belong to the supervisor for real. Each runs in its own process group, so a Ctrl-C
at the terminal reaches only the supervisor, which then stops them in its own order (the ones
marked `stop_last` after the rest). On Linux each one is killed by the kernel when the
supervisor dies, even by SIGKILL, so no orphan keeps a port for the next start. A port that is
taken before a child ever started is someone else's: the run ends at once, with one line naming
the port and the process that holds it, instead of reaching that other server.

Every child's stdout and stderr go through one pipe, are echoed with the child's name as a
prefix, and the last lines are kept in a ring buffer for that failure report.
"""

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from core.processes import describe_taken, die_with_this_process, port_is_free, signal_group

ReadyCheck = Callable[[], Awaitable[bool]]


@dataclass(frozen=True)
class Child:
    """One supervised process.

    Attributes:
        name: Shown in the output prefix and in every log line about the child.
        argv: The command; started without a shell.
        cwd: Working directory, the supervisor's own when None.
        env: Variables set on top of the supervisor's environment.
        ready: Polled after each start until it answers True; children listed after this one,
            and those that `require` it, start only then. A child that never gets ready within
            the policy's `ready_timeout_s` is killed and counts as a failed start.
        requires: Names of children that must be ready before this one (re)starts, so a worker
            is not restarted into a server that is itself restarting.
        ports: TCP ports the child binds on 127.0.0.1. Taken before the first start, they end the
            run (another program holds them, and a readiness check would reach it instead); a
            restart waits until they are free, because the previous instance's sockets may
            outlive it for a moment.
        stop_grace_s: How long the child may take to exit after SIGTERM before it is killed; the
            policy's `stop_grace_s` when None.
        stop_last: Stopped only once every other child has exited: a server the others send
            requests to, so that what they asked can finish before it goes.
    """

    name: str
    argv: Sequence[str]
    cwd: Path | None = None
    env: Mapping[str, str] | None = None
    ready: ReadyCheck | None = None
    requires: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()
    stop_grace_s: float | None = None
    stop_last: bool = False


@dataclass(frozen=True)
class RestartPolicy:
    """When to restart, how long to wait, and when to give up.

    A child that exits less than `startup_window_s` after it started failed at start-up;
    `max_startup_failures` of those in a row mean no restart will help. The backoff doubles with
    every restart and falls back to `initial_backoff_s` once a child has run `stable_after_s`.
    """

    initial_backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    stable_after_s: float = 60.0
    startup_window_s: float = 5.0
    max_startup_failures: int = 5
    ready_timeout_s: float = 60.0
    stop_grace_s: float = 10.0
    port_wait_s: float = 30.0
    output_lines: int = 40


@dataclass
class _State:
    """What the supervisor knows about one child between its restarts."""

    child: Child
    last_output: deque[str]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    first_up: asyncio.Event = field(default_factory=asyncio.Event)
    proc: asyncio.subprocess.Process | None = None
    pump: asyncio.Task[None] | None = None
    restarts: int = 0
    startup_failures: int = 0


def describe_exit(returncode: int) -> str:
    """`exited with code 1` or `killed by SIGKILL`, from a Popen-style return code."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


class Supervisor:
    """Runs children in order, restarts the ones that die, and stops all of them together."""

    def __init__(
        self,
        children: Sequence[Child],
        *,
        policy: RestartPolicy | None = None,
        out: TextIO | None = None,
        tag: str = "supervisor",
    ) -> None:
        names = [c.name for c in children]
        if len(set(names)) != len(names):
            raise ValueError(f"child names must be unique: {names}")
        for child in children:
            unknown = set(child.requires) - set(names)
            if unknown:
                raise ValueError(f"{child.name} requires unknown children {sorted(unknown)}")
        self.policy = policy or RestartPolicy()
        self._children = list(children)
        self._out = out or sys.stdout
        self._tag = tag
        self._width = max((len(n) for n in names), default=0)
        self._states: dict[str, _State] = {}
        self._stop = asyncio.Event()
        self._gave_up: str | None = None
        self._preexec: Callable[[], None] | None = None

    def log(self, message: str) -> None:
        """One supervisor line, tagged so it stands out among the children's output."""
        self._out.write(f"[{self._tag}] {message}\n")
        self._out.flush()

    def stop(self) -> None:
        """Ask `run` to stop every child and return; safe from a signal handler."""
        self._stop.set()

    async def run(self, *, on_started: Callable[[], None] | None = None) -> int:
        """Start the children in order, keep them alive until stopped; 0 on a requested stop.

        Returns 1 when a child kept failing at start-up, after its last output was shown and
        the others were stopped, and at once, with nothing started, when a child's port is
        already taken. `on_started` runs once every child has started (and is ready).
        """
        taken = [describe_taken(p, c.name) for c in self._children for p in c.ports if not port_is_free(p)]
        if taken:
            what = "it" if len(taken) == 1 else "them"
            self.log(f"cannot start: {'; '.join(taken)} — stop what holds {what} or choose other ports")
            return 1
        self._preexec = die_with_this_process()
        loop = asyncio.get_running_loop()
        handled = (signal.SIGINT, signal.SIGTERM)
        for sig in handled:
            loop.add_signal_handler(sig, self.stop)
        self._states = {
            c.name: _State(child=c, last_output=deque(maxlen=self.policy.output_lines))
            for c in self._children
        }
        keepers = [asyncio.create_task(self._keep_alive(s)) for s in self._states.values()]
        try:
            started = await self._wait_all_first_up()
            if started and on_started is not None:
                on_started()
            await self._stop.wait()
        finally:
            await self._stop_all()
            # Keepers return on their own once stopped; one stuck in a readiness probe is cut off.
            _, stuck = await asyncio.wait(keepers, timeout=self.policy.stop_grace_s)
            for keeper in stuck:
                keeper.cancel()
            await asyncio.gather(*keepers, return_exceptions=True)
            await self._stop_all()  # a child spawned while stopping
            for sig in handled:
                loop.remove_signal_handler(sig)
        return 1 if self._gave_up else 0

    def pid(self, name: str) -> int | None:
        """The running pid of a child, None while it is down."""
        state = self._states.get(name)
        if state is None or state.proc is None or state.proc.returncode is not None:
            return None
        return state.proc.pid

    async def _wait_all_first_up(self) -> bool:
        for state in self._states.values():
            if not await self._until(state.first_up):
                return False
        return True

    async def _until(self, event: asyncio.Event) -> bool:
        """Wait for the event unless a stop comes first; True if the event happened."""
        if event.is_set():
            return True
        waiter = asyncio.ensure_future(event.wait())
        stopper = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait([waiter, stopper], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        stopper.cancel()
        return event.is_set() and not self._stop.is_set()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep unless a stop comes first; True if the whole time passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)
        return not self._stop.is_set()

    async def _keep_alive(self, state: _State) -> None:
        """Keep one child alive; a bug in here stops everything rather than hang half-started."""
        try:
            await self._restart_loop(state)
        except Exception as exc:
            self._gave_up = state.child.name
            self.log(f"supervising {state.child.name} failed: {exc!r}; stopping everything")
            self._stop.set()

    async def _restart_loop(self, state: _State) -> None:
        """Start the child, wait for its exit, restart it — until stopped or given up."""
        child = state.child
        index = self._children.index(child)
        before = self._states[self._children[index - 1].name] if index else None
        if before is not None and not await self._until(before.first_up):
            return
        while not self._stop.is_set():
            for name in child.requires:
                if not await self._until(self._states[name].ready):
                    return
            busy = await self._wait_ports(child, patient=state.proc is not None)
            if busy is None:
                return
            if busy:
                if not await self._ports_taken(state, busy):
                    return
                continue
            started_at = time.monotonic()
            try:
                proc = await self._spawn(state)
            except OSError as exc:  # no such program, not executable, bad cwd
                state.last_output.append(f"cannot start {list(child.argv)}: {exc}")
                if not await self._after_exit(state, f"{child.name} could not start", 0.0, failed=True):
                    return
                continue
            if self._stop.is_set():  # stopped while spawning: _stop_all may not have seen it
                await self._terminate(state)
                return
            ready = await self._await_ready(state, proc)
            if ready:
                if child.ready is not None:
                    self.log(f"{child.name} ready")
                state.ready.set()
                state.first_up.set()
            returncode = await proc.wait()
            state.ready.clear()
            if self._stop.is_set():
                return
            await self._drain(state)
            ran_s = time.monotonic() - started_at
            what = f"{child.name} (pid {proc.pid}) {describe_exit(returncode)} after {ran_s:.1f}s"
            if not await self._after_exit(state, what, ran_s, failed=not ready):
                return

    async def _spawn(self, state: _State) -> asyncio.subprocess.Process:
        child = state.child
        env = None
        if child.env is not None:
            env = {**os.environ, **child.env}
        proc = await asyncio.create_subprocess_exec(
            *child.argv,
            cwd=child.cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            process_group=0,  # a Ctrl-C at the terminal is the supervisor's to pass on, in order
            preexec_fn=self._preexec,
        )
        state.proc = proc
        assert proc.stdout is not None
        state.pump = asyncio.create_task(self._pump(child.name, proc.stdout, state.last_output))
        self.log(f"{child.name} started (pid {proc.pid})")
        return proc

    async def _await_ready(self, state: _State, proc: asyncio.subprocess.Process) -> bool:
        """Poll the readiness check; kill a child that exits or hangs instead of getting ready."""
        check = state.child.ready
        if check is None:
            return True
        deadline = time.monotonic() + self.policy.ready_timeout_s
        while proc.returncode is None and not self._stop.is_set():
            with contextlib.suppress(Exception):  # a probe that raises means "not yet"
                if await check():
                    return True
            if time.monotonic() > deadline:
                self.log(
                    f"{state.child.name} (pid {proc.pid}) not ready after "
                    f"{self.policy.ready_timeout_s:g}s; killing it"
                )
                signal_group(proc, signal.SIGKILL)
                return False
            await self._sleep(0.25)
        return False

    async def _after_exit(self, state: _State, what: str, ran_s: float, *, failed: bool) -> bool:
        """Log the death, decide between restarting (True after the backoff) and giving up.

        `failed` marks a start that never got ready; a quick exit counts as one too.
        """
        child, policy = state.child, self.policy
        if ran_s >= policy.stable_after_s:
            state.restarts = 0
        if ran_s < policy.startup_window_s or failed:
            state.startup_failures += 1
        else:
            state.startup_failures = 0
        if state.startup_failures >= policy.max_startup_failures:
            self._gave_up = child.name
            self.log(
                f"{what}; it failed at start-up {state.startup_failures} times in a row "
                f"(each within {policy.startup_window_s:g}s of starting) — giving up. "
                f"Last output of {child.name}:"
            )
            for line in state.last_output or ["(no output)"]:
                self._out.write(f"    {child.name} | {line}\n")
            self.log(f"stopping everything because {child.name} keeps failing")
            self._stop.set()
            return False
        delay = min(policy.initial_backoff_s * 2**state.restarts, policy.max_backoff_s)
        state.restarts += 1
        self.log(f"{what}; restarting in {delay:.3g}s (restart #{state.restarts})")
        return await self._sleep(delay)

    async def _ports_taken(self, state: _State, busy: list[int]) -> bool:
        """A start refused over taken ports; True when a retry comes (after the backoff).

        A child that never ran finds another program on its port, which no retry moves: give up
        rather than start a child whose readiness check would reach that other program.
        """
        child = state.child
        taken = "; ".join(describe_taken(p, child.name) for p in busy)
        if state.proc is None:
            self._gave_up = child.name
            self.log(f"cannot start {child.name}: {taken}; stopping everything")
            self._stop.set()
            return False
        state.last_output.append(taken)
        return await self._after_exit(state, f"{child.name} not restarted: {taken}", 0.0, failed=True)

    async def _wait_ports(self, child: Child, *, patient: bool) -> list[int] | None:
        """The child's ports still taken (after `port_wait_s` when `patient`); None if stopped."""
        deadline = time.monotonic() + self.policy.port_wait_s
        while busy := [p for p in child.ports if not port_is_free(p)]:
            if not patient or time.monotonic() > deadline:
                return busy
            if not await self._sleep(0.25):
                return None
        return []

    async def _pump(self, name: str, stream: asyncio.StreamReader, last: deque[str]) -> None:
        """Echo the child's output line by line with its name, remembering the last lines."""
        prefix = f"{name:<{self._width}} | "
        pending = b""
        while chunk := await stream.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                self._echo(prefix, raw, last)
        if pending:
            self._echo(prefix, pending, last)

    def _echo(self, prefix: str, raw: bytes, last: deque[str]) -> None:
        line = raw.decode(errors="replace").rstrip("\r")
        last.append(line)
        self._out.write(prefix + line + "\n")
        self._out.flush()

    async def _drain(self, state: _State) -> None:
        """Let the pump read what the dead child wrote last (a grandchild may hold the pipe)."""
        if state.pump is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(state.pump), 1.0)

    async def _stop_all(self) -> None:
        """SIGTERM the children, last started first and those marked `stop_last` after all the
        others; SIGKILL whoever outlives its grace time."""
        self._stop.set()
        newest_first = list(reversed(self._states.values()))
        for state in sorted(newest_first, key=lambda s: s.child.stop_last):  # a stable sort
            await self._terminate(state)
        for state in self._states.values():
            await self._drain(state)

    async def _terminate(self, state: _State) -> None:
        proc = state.proc
        if proc is None or proc.returncode is not None:
            return
        grace = state.child.stop_grace_s
        grace = self.policy.stop_grace_s if grace is None else grace
        signal_group(proc, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except TimeoutError:
            self.log(f"{state.child.name} did not stop in {grace:g}s; killing it")
            signal_group(proc, signal.SIGKILL)
            await proc.wait()
