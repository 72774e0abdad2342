"""`make run`'s launcher: with TEMPORAL_ADDRESS set it starts no server of its own, migrates the
database, serves on API_PORT with a polling worker, and stops everything on Ctrl-C. With its own
Temporal dev server it heals: a worker or a Temporal server killed with SIGKILL is restarted and
the stack is ready again while the API stays up."""

import asyncio
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_launcher_uses_an_external_temporal_serves_ready_and_stops_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    port = _free_port()
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": settings.temporal_target,
        "TASK_QUEUE": f"launcher-{port}",
        "API_PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}",
        "ARTIFACTS_DIR": str(tmp_path / "artifacts"),
        "LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "none",  # the local model has its own test (tests/test_local_model.py)
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.launcher"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert ready is not None and ready.status_code == 200, ready and ready.text
        assert ready.json()["checks"]["worker"]["ok"] is True
        assert (tmp_path / "app.db").exists()  # migrated by the launcher
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, output
    assert f"http://127.0.0.1:{port}/docs" in output
    assert "temporal server start-dev" not in output and "Temporal Server:" not in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


@dataclass
class Launcher:
    """A running `python -m core.launcher` with its own Temporal dev server, and its output."""

    proc: subprocess.Popen[str]
    api_url: str
    temporal_target: str
    task_queue: str
    lines: list[str] = field(default_factory=list)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self, name: str) -> list[int]:
        """Every pid the launcher reported for a child, in start order."""
        return [int(p) for p in re.findall(rf"\] {name} started \(pid (\d+)\)", self.output)]


def _read(launcher: Launcher) -> None:
    assert launcher.proc.stdout is not None
    for line in launcher.proc.stdout:
        launcher.lines.append(line.rstrip("\n"))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return not stat.split(") ")[-1].startswith("Z")  # a zombie is dead, just not reaped


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


async def _until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, launcher: Launcher, timeout_s: float
) -> None:
    """Poll a (sync or async) condition; a bound so a broken launcher fails instead of hanging."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}; launcher output:\n{launcher.output}")
        await asyncio.sleep(0.3)


async def _polling_pids(launcher: Launcher) -> set[int]:
    """Pids of the workers polling the task queue on the server running now (pollers are
    in-memory on the server, so a restarted server lists only workers that polled it since)."""
    try:
        client = await Client.connect(launcher.temporal_target)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace="default",
                task_queue=TaskQueue(name=launcher.task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
    except (RuntimeError, RPCError):  # the server is not (fully) up yet
        return set()
    return {int(p.identity.split("@")[0]) for p in response.pollers}


class _Availability(threading.Thread):
    """Hits /health all the time and remembers every moment the API did not answer 200."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.failures: list[str] = []
        self.checks = 0
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            try:
                status = httpx.get(f"{self.url}/health", timeout=30).status_code  # slow is not down
                if status != 200:
                    self.failures.append(f"HTTP {status}")
            except httpx.TransportError as exc:
                self.failures.append(repr(exc))
            self.checks += 1
            time.sleep(0.1)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """The real launcher in a temporary working directory (so ./data, with the Temporal SQLite
    file and the generated secrets, is its own), on free ports, running until the module ends."""
    cwd = tmp_path_factory.mktemp("launcher")
    api_port, temporal_port, ui_port = _free_port(), _free_port(), _free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "API_PORT": str(api_port),
        "TEMPORAL_PORT": str(temporal_port),
        "TEMPORAL_UI_PORT": str(ui_port),
        "TASK_QUEUE": f"launcher-{uuid.uuid4().hex[:8]}",
        "DATABASE_URL": f"sqlite:///{cwd / 'app.db'}",
        "ARTIFACTS_DIR": str(cwd / "artifacts"),
        "LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "none",  # the local model has its own test (tests/test_local_model.py)
    }
    for inherited in ("TEMPORAL_ADDRESS", "API_TOKEN", "ENCRYPTION_KEYS"):
        env.pop(inherited, None)  # the launcher starts its own server and generates secrets
    proc = subprocess.Popen(
        [sys.executable, "-m", "core.launcher"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    running = Launcher(
        proc=proc,
        api_url=f"http://127.0.0.1:{api_port}",
        temporal_target=f"127.0.0.1:{temporal_port}",
        task_queue=env["TASK_QUEUE"],
    )
    reader = threading.Thread(target=_read, args=(running,), daemon=True)
    reader.start()
    try:
        # Start-up on a busy 2-core machine takes a while; the tests themselves are bounded.
        deadline = time.monotonic() + 240
        while not _ready(running.api_url):
            assert proc.poll() is None, running.output
            assert time.monotonic() < deadline, running.output
            time.sleep(0.5)
        assert (cwd / "data" / "temporal.db").exists()
        assert (cwd / "data" / "generated.env").exists()
        yield running
        children = [pid for name in ("temporal", "worker", "api") for pid in running.pids(name)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, running.output
        reader.join(timeout=10)
        assert not [pid for pid in children if _alive(pid)], running.output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


async def test_a_worker_killed_with_sigkill_is_restarted_and_polls_again_while_the_api_stays_up(
    launcher: Launcher,
) -> None:
    await _until(lambda: _ready(launcher.api_url), "readiness", launcher, 60)
    [api_pid] = launcher.pids("api")
    worker_pid = launcher.pids("worker")[-1]
    availability = _Availability(launcher.api_url)
    availability.start()
    try:
        os.kill(worker_pid, signal.SIGKILL)
        await _until(lambda: launcher.pids("worker")[-1] != worker_pid, "the worker's restart", launcher, 30)
        assert f"worker (pid {worker_pid}) killed by SIGKILL" in launcher.output
        new_pid = launcher.pids("worker")[-1]

        async def new_worker_polls() -> bool:
            return new_pid in await _polling_pids(launcher)

        await _until(new_worker_polls, "the new worker to poll", launcher, 60)
        await _until(lambda: _ready(launcher.api_url), "readiness", launcher, 30)
    finally:
        availability.done.set()
        availability.join()
    assert availability.checks > 0 and availability.failures == []
    assert launcher.pids("api") == [api_pid] and _alive(api_pid)


async def test_a_temporal_server_killed_with_sigkill_comes_back_on_its_port_with_its_runs(
    launcher: Launcher,
) -> None:
    await _until(lambda: _ready(launcher.api_url), "readiness", launcher, 60)
    [api_pid] = launcher.pids("api")
    temporal_pid = launcher.pids("temporal")[-1]
    client = await Client.connect(launcher.temporal_target)
    # A run that nobody picks up stays open: it must survive in the server's SQLite file.
    handle = await client.start_workflow(
        "NobodyRunsThis", id=f"kept-{uuid.uuid4().hex[:8]}", task_queue="nobody-polls-this"
    )
    availability = _Availability(launcher.api_url)
    availability.start()
    try:
        os.kill(temporal_pid, signal.SIGKILL)
        await _until(
            lambda: launcher.pids("temporal")[-1] != temporal_pid,
            "the server's restart",
            launcher,
            30,
        )
        assert f"temporal (pid {temporal_pid}) killed by SIGKILL" in launcher.output

        async def a_worker_polls_the_new_server() -> bool:
            return bool(set(launcher.pids("worker")) & await _polling_pids(launcher))

        await _until(a_worker_polls_the_new_server, "a worker polling again", launcher, 60)
        await _until(lambda: _ready(launcher.api_url), "readiness", launcher, 30)
    finally:
        availability.done.set()
        availability.join()
    again = await Client.connect(launcher.temporal_target)
    described = await again.get_workflow_handle(handle.id).describe()
    assert described.id == handle.id
    assert availability.checks > 0 and availability.failures == []
    assert launcher.pids("api") == [api_pid] and _alive(api_pid)


@pytest.mark.parametrize(("provider", "expected"), [("local", True), ("none", False), ("openai", False)])
def test_the_local_model_is_a_supervised_child_only_with_llm_provider_local(
    provider: str, expected: bool
) -> None:
    from core.launcher import children

    settings = Settings(llm_provider=provider, openai_api_key="sk-unused")  # type: ignore[arg-type]
    parts = {child.name: child for child in children(settings)}
    assert ("model" in parts) is expected
    if expected:
        assert list(parts["model"].argv)[-2:] == ["-m", "core.local_model"]
        assert parts["model"].ports == (settings.local_model_port,)
        assert parts["model"].ready is not None
