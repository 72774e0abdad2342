"""core.supervisor with real tiny child processes: a killed child comes back and the log names
it, a child that keeps failing at start-up ends the run with its name and last output, a signal
stops every child, and a child waits for the one it requires."""

import asyncio
import io
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from core.processes import port_is_free
from core.supervisor import Child, RestartPolicy, Supervisor

FAST = RestartPolicy(initial_backoff_s=0.05, startup_window_s=2.0, stop_grace_s=5.0)
SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]
LISTENER = (
    "import socket, time\n"
    "sock = socket.socket()\n"
    "sock.bind(('127.0.0.1', 0))\n"
    "sock.listen()\n"
    "print(sock.getsockname()[1], flush=True)\n"
    "time.sleep(120)\n"
)


async def _until(condition: Callable[[], object], what: str, timeout_s: float = 30) -> None:
    """Poll until the condition holds; a bound so a broken supervisor fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_child_killed_with_sigkill_is_restarted_and_the_log_line_names_it() -> None:
    out = io.StringIO()
    sup = Supervisor([Child("sleeper", SLEEPER)], policy=FAST, out=out)
    run = asyncio.create_task(sup.run())
    await _until(lambda: sup.pid("sleeper"), "the first start")
    first = sup.pid("sleeper")
    assert first is not None
    os.kill(first, signal.SIGKILL)
    await _until(lambda: sup.pid("sleeper") not in (None, first), "the restart")
    second = sup.pid("sleeper")
    sup.stop()
    assert await asyncio.wait_for(run, 30) == 0
    log = out.getvalue()
    assert f"sleeper (pid {first}) killed by SIGKILL" in log
    assert "restarting in 0.05s (restart #1)" in log
    assert f"sleeper started (pid {second})" in log
    assert second is not None and not _alive(second)


async def test_a_child_that_keeps_failing_at_start_up_stops_all_with_its_name_and_last_output() -> None:
    broken = (
        "import sys\n"
        "for i in range(100): print('line', i)\n"
        "print('boom: bad config', file=sys.stderr)\n"
        "sys.exit(3)\n"
    )
    out = io.StringIO()
    policy = RestartPolicy(initial_backoff_s=0.05, max_startup_failures=3, output_lines=40)
    sup = Supervisor(
        [Child("steady", SLEEPER), Child("broken", [sys.executable, "-c", broken])],
        policy=policy,
        out=out,
    )
    steady: list[int] = []
    run = asyncio.create_task(sup.run())
    await _until(lambda: sup.pid("steady"), "steady to start")
    steady.append(sup.pid("steady") or 0)
    assert await asyncio.wait_for(run, 60) == 1
    log = out.getvalue()
    assert log.count("broken started") == 3
    assert "broken (pid" in log and "exited with code 3" in log
    assert "failed at start-up 3 times in a row" in log and "giving up" in log
    report = log.split("giving up")[-1]
    assert "    broken | boom: bad config" in report  # stderr is captured as well
    assert "    broken | line 99" in report and "    broken | line 61" in report
    assert "line 60\n" not in report  # only the last 40 lines are kept
    assert not _alive(steady[0])  # the healthy child was stopped too


async def test_a_program_that_cannot_be_started_ends_the_run_with_the_reason(tmp_path: Path) -> None:
    out = io.StringIO()
    missing = str(tmp_path / "no-such-program")
    policy = RestartPolicy(initial_backoff_s=0.05, max_startup_failures=2)
    sup = Supervisor([Child("ghost", [missing])], policy=policy, out=out)
    assert await asyncio.wait_for(sup.run(), 30) == 1
    assert "ghost could not start; restarting" in out.getvalue()
    assert f"    ghost | cannot start ['{missing}']" in out.getvalue().split("giving up")[-1]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_to_the_supervisor_stops_every_child(signum: signal.Signals) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ignoring SIGTERM', flush=True)\n"
        "time.sleep(120)\n",
    ]
    out = io.StringIO()
    policy = RestartPolicy(initial_backoff_s=0.05, stop_grace_s=1.0)
    sup = Supervisor(
        [Child("a", SLEEPER), Child("b", SLEEPER), Child("stubborn", stubborn)],
        policy=policy,
        out=out,
    )
    started = asyncio.Event()
    run = asyncio.create_task(sup.run(on_started=started.set))
    await asyncio.wait_for(started.wait(), 30)
    await _until(lambda: "stubborn | ignoring SIGTERM" in out.getvalue(), "stubborn's handler")
    pids = [sup.pid(name) for name in ("a", "b", "stubborn")]
    os.kill(os.getpid(), signum)  # the supervisor's handler, not pytest's, receives it
    assert await asyncio.wait_for(run, 30) == 0
    assert all(pid is not None and not _alive(pid) for pid in pids), out.getvalue()
    assert "stubborn did not stop in 1s; killing it" in out.getvalue()
    assert "restarting" not in out.getvalue()


async def test_a_child_restarts_only_once_the_child_it_requires_is_ready_again(
    tmp_path: Path,
) -> None:
    flag = str(tmp_path / "server-ready")
    server = [
        sys.executable,
        "-c",
        f"import pathlib, time; time.sleep(1.5); pathlib.Path({flag!r}).touch(); time.sleep(120)",
    ]
    client = [
        sys.executable,
        "-c",
        f"import os, time; print('server ready:', os.path.exists({flag!r}), flush=True); time.sleep(120)",
    ]

    async def server_ready() -> bool:
        return await asyncio.to_thread(os.path.exists, flag)

    out = io.StringIO()
    sup = Supervisor(
        [Child("server", server, ready=server_ready), Child("client", client, requires=("server",))],
        policy=FAST,
        out=out,
    )
    run = asyncio.create_task(sup.run())
    await _until(lambda: "client | server ready: True" in out.getvalue(), "the first client")
    server_pid, client_pid = sup.pid("server"), sup.pid("client")
    assert server_pid is not None and client_pid is not None
    os.remove(flag)
    os.kill(server_pid, signal.SIGKILL)
    await _until(lambda: f"server (pid {server_pid}) killed" in out.getvalue(), "server's death")
    os.kill(client_pid, signal.SIGKILL)
    await _until(lambda: out.getvalue().count("client | server ready:") == 2, "client's restart")
    sup.stop()
    assert await asyncio.wait_for(run, 30) == 0
    assert "client | server ready: False" not in out.getvalue()


def test_port_is_free_sees_a_listening_socket() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not port_is_free(port)
    assert port_is_free(port)


@pytest.fixture
def held_port() -> Iterator[tuple[int, int]]:
    """A TCP port another process listens on, and that process' pid."""
    holder = subprocess.Popen([sys.executable, "-c", LISTENER], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None
        yield int(holder.stdout.readline()), holder.pid
    finally:
        holder.kill()
        holder.wait()


async def test_a_port_taken_before_the_start_ends_the_run_at_once_naming_the_port_and_its_holder(
    held_port: tuple[int, int],
) -> None:
    port, holder = held_port

    async def answers() -> bool:  # like the launcher's check: whoever answers on the port counts
        return not port_is_free(port)

    out = io.StringIO()
    sup = Supervisor(
        [Child("server", SLEEPER, ready=answers, ports=(port,)), Child("client", SLEEPER)],
        policy=FAST,
        out=out,
    )
    started = time.monotonic()
    assert await asyncio.wait_for(sup.run(), 10) == 1, out.getvalue()
    assert time.monotonic() - started < 5
    log = out.getvalue()
    assert log.count("\n") == 1, log  # one line says it all
    assert f"port {port} (server) is already in use by pid {holder} ({sys.executable} -c import" in log
    assert " started (pid" not in log and "server ready" not in log


async def test_a_child_marked_stop_last_is_stopped_after_the_others_exited_and_gets_its_own_grace(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events"

    def stops_slowly(name: str, seconds: float) -> list[str]:
        """A child that, told to stop, takes `seconds` to finish what it was doing."""
        return [
            sys.executable,
            "-c",
            "import signal, sys, time\n"
            f"def note(what): open({str(events)!r}, 'a').write({name!r} + ' ' + what + '\\n')\n"
            "def stop(signum, frame):\n"
            "    note(signal.Signals(signum).name)\n"
            f"    time.sleep({seconds})\n"
            "    note('done')\n"
            "    sys.exit(0)\n"
            "signal.signal(signal.SIGTERM, stop)\n"
            "print('up', flush=True)\n"
            "time.sleep(120)\n",
        ]

    out = io.StringIO()
    policy = RestartPolicy(initial_backoff_s=0.05, stop_grace_s=0.5)
    sup = Supervisor(
        [
            Child("client", stops_slowly("client", 0.3)),
            # Started after the client, as the launcher starts the model after the API.
            Child("model", stops_slowly("model", 1.5), stop_last=True, stop_grace_s=5.0),
        ],
        policy=policy,
        out=out,
    )
    started = asyncio.Event()
    run = asyncio.create_task(sup.run(on_started=started.set))
    await asyncio.wait_for(started.wait(), 30)
    await _until(lambda: out.getvalue().count("| up") == 2, "both signal handlers")
    sup.stop()
    assert await asyncio.wait_for(run, 30) == 0
    assert events.read_text().splitlines() == [
        "client SIGTERM",
        "client done",
        "model SIGTERM",  # only once the client had finished
        "model done",  # 1.5 s: longer than the policy's 0.5 s, within its own 5 s
    ], out.getvalue()
    assert "did not stop" not in out.getvalue()
