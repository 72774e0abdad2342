"""core.supervisor owns its children for real, seen from outside its process: a supervisor killed
with SIGKILL takes every child with it (no orphan keeps a port for the next start), and a Ctrl-C
at the terminal reaches the children only through the supervisor, in its stop order."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.stack import alive

ROOT = Path(__file__).resolve().parent.parent
SUPERVISOR = (
    "import asyncio, json, sys\n"
    "from core.supervisor import Child, RestartPolicy, Supervisor\n"
    "children = [Child(**spec) for spec in json.loads(sys.argv[1])]\n"
    "sys.exit(asyncio.run(Supervisor(children, policy=RestartPolicy(stop_grace_s=5.0)).run()))\n"
)


@dataclass
class Running:
    """A supervisor in its own process (and session, as a shell's job), and its output."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pid(self, name: str) -> int | None:
        found = re.findall(rf"\] {name} started \(pid (\d+)\)", self.output)
        return int(found[-1]) if found else None

    def wait_for(self, text: str, count: int = 1, timeout_s: float = 30) -> None:
        """Until `text` was printed `count` times; bounded, so a broken supervisor fails."""
        deadline = time.monotonic() + timeout_s
        while self.output.count(text) < count:
            assert time.monotonic() < deadline, f"no {count} x {text!r} in:\n{self.output}"
            assert self.proc.poll() is None, self.output
            time.sleep(0.05)


@contextmanager
def supervisor(children: list[dict[str, object]]) -> Iterator[Running]:
    """`python -c SUPERVISOR` with these children; whatever survives the test is killed after."""
    proc = subprocess.Popen(
        [sys.executable, "-c", SUPERVISOR, json.dumps(children)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Running(proc)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            running.lines.append(line.rstrip("\n"))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        yield running
    finally:
        pids = [running.pid(str(spec["name"])) for spec in children]
        for pid in [proc.pid, *pids]:
            if pid is not None and alive(pid):
                os.kill(pid, signal.SIGKILL)
        proc.wait()
        reader.join(timeout=5)


def stops_slowly(name: str, seconds: float, events: Path) -> list[str]:
    """A child that notes each signal it gets and, told by SIGTERM to stop, takes `seconds`."""
    return [
        sys.executable,
        "-c",
        "import signal, sys, time\n"
        f"def note(what): open({str(events)!r}, 'a').write({name!r} + ' ' + what + '\\n')\n"
        "def got(signum, frame): note(signal.Signals(signum).name)\n"
        "def stop(signum, frame):\n"
        "    got(signum, frame)\n"
        f"    time.sleep({seconds})\n"
        "    note('done')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGINT, got)\n"
        "signal.signal(signal.SIGTERM, stop)\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n",
    ]


def test_a_supervisor_killed_with_sigkill_leaves_no_child_alive() -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up', flush=True)\n"
        "time.sleep(120)\n",
    ]
    children: list[dict[str, object]] = [
        {"name": "sleep", "argv": ["sleep", "120"]},  # not Python: the setting survives exec
        {"name": "stubborn", "argv": stubborn},
    ]
    with supervisor(children) as running:
        running.wait_for("stubborn | up")
        pids = [running.pid("sleep"), running.pid("stubborn")]
        assert None not in pids and all(alive(pid) for pid in pids if pid), running.output
        os.kill(running.proc.pid, signal.SIGKILL)
        running.proc.wait()
        deadline = time.monotonic() + 5
        while left := [pid for pid in pids if pid and alive(pid)]:
            assert time.monotonic() < deadline, f"children {left} outlived the supervisor"
            time.sleep(0.05)


def test_a_ctrl_c_reaches_the_children_only_through_the_supervisor_with_the_stop_last_one_last(
    tmp_path: Path,
) -> None:
    events = tmp_path / "events"
    children: list[dict[str, object]] = [
        {"name": "client", "argv": stops_slowly("client", 0.3, events)},
        {"name": "model", "argv": stops_slowly("model", 1.0, events), "stop_last": True},
    ]
    with supervisor(children) as running:
        running.wait_for("| up", count=2)  # both signal handlers are in place
        os.killpg(running.proc.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        assert running.proc.wait(timeout=30) == 0, running.output
    assert events.read_text().splitlines() == [
        "client SIGTERM",
        "client done",
        "model SIGTERM",
        "model done",
    ], running.output
