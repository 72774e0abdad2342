"""A real `python -m core.launcher` (`make run`) for tests: started in its own working directory on
free ports, its output collected, its children's pids read from the supervisor's log lines, and
helpers to wait on it and to watch the API's availability while things are killed."""

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
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.service import RPCError

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Launcher:
    """A running `python -m core.launcher` with its own Temporal dev server, and its output."""

    proc: subprocess.Popen[str]
    api_url: str
    temporal_target: str
    task_queue: str
    cwd: Path
    lines: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def pids(self, name: str) -> list[int]:
        """Every pid the launcher reported for a child, in start order."""
        return [int(p) for p in re.findall(rf"\] {name} started \(pid (\d+)\)", self.output)]


def read_output(launcher: Launcher) -> None:
    assert launcher.proc.stdout is not None
    for line in launcher.proc.stdout:
        launcher.lines.append(line.rstrip("\n"))


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return not stat.split(") ")[-1].startswith("Z")  # a zombie is dead, just not reaped


def ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
    except httpx.TransportError:
        return False


async def until(
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


def local_model_env(model: Path, threads: int | None = 2) -> dict[str, str]:
    """A launcher's environment for the embedded model from the file `model` on a free port."""
    env = {"LLM_PROVIDER": "local", "LOCAL_MODEL_PATH": str(model), "LOCAL_MODEL_PORT": str(free_port())}
    return env if threads is None else {**env, "LOCAL_MODEL_THREADS": str(threads)}


async def until_model_serves(http: httpx.AsyncClient, launcher: Launcher, timeout_s: float = 120) -> None:
    """Until `/health/ready` says the local model serves (it loads after the API answers)."""

    async def serves() -> bool:
        ready = (await http.get("/health/ready")).json()
        return bool(ready["checks"]["local_model"].get("serving"))

    await until(serves, "the local model to serve", launcher, timeout_s)


async def polling_pids(launcher: Launcher) -> set[int]:
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


class Availability(threading.Thread):
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


def launcher_env(cwd: Path, *, api_port: int, temporal_port: int, ui_port: int) -> dict[str, str]:
    """The environment of a test's launcher in `cwd`: its own ports, task queue, SQLite database
    and secrets (generated in ./data), no local model, one worker."""
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
        "WORKER_PROCESSES": "1",  # kills target "the worker": one, unless a test asks for more
        # Its own port, so stacks of tests running side by side (pytest-xdist) keep their own.
        "WORKER_METRICS_ADDRESS": f"127.0.0.1:{free_port()}",
        # Its own Temporal CLI profile (core/temporal_cli_config.py), not the session's file.
        "TEMPORAL_CONFIG_FILE": str(cwd / "temporal.toml"),
    }
    for inherited in ("TEMPORAL_ADDRESS", "API_TOKEN", "ENCRYPTION_KEYS", "WORKER_VERSIONING"):
        # the launcher starts its own server and generates secrets; its workers are versioned
        env.pop(inherited, None)
    return env


def spawn_launcher(cwd: Path, env: dict[str, str]) -> Launcher:
    """`python -m core.launcher` in `cwd` with `env`, in its own session, its output collected."""
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
        api_url=f"http://127.0.0.1:{env['API_PORT']}",
        temporal_target=f"127.0.0.1:{env['TEMPORAL_PORT']}",
        task_queue=env["TASK_QUEUE"],
        cwd=cwd,
    )
    running.reader = threading.Thread(target=read_output, args=(running,), daemon=True)
    running.reader.start()
    return running


@contextmanager
def running_launcher(cwd: Path, **overrides: str) -> Iterator[Launcher]:
    """The real launcher in `cwd` (so ./data, with the Temporal SQLite file and the generated
    secrets, is its own), on free ports, until the block ends; then Ctrl-C must stop it cleanly
    with no child left alive. `overrides` are environment variables (DATABASE_URL, ...)."""
    api_port, temporal_port, ui_port = free_port(), free_port(), free_port()
    env = launcher_env(cwd, api_port=api_port, temporal_port=temporal_port, ui_port=ui_port)
    env.update(overrides)
    running = spawn_launcher(cwd, env)
    proc = running.proc
    try:
        # Start-up on a busy 2-core machine takes a while; the tests themselves are bounded.
        deadline = time.monotonic() + 240
        while not ready(running.api_url):
            assert proc.poll() is None, running.output
            assert time.monotonic() < deadline, running.output
            time.sleep(0.5)
        yield running
        children = [pid for name in ("temporal", "worker", "api") for pid in running.pids(name)]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, running.output
        if running.reader is not None:
            running.reader.join(timeout=10)
        assert not [pid for pid in children if alive(pid)], running.output
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@asynccontextmanager
async def stack_api(
    cwd: Path, database_url: str, settings: Settings, timeout_s: float = 60
) -> AsyncIterator[tuple[Launcher, httpx.AsyncClient]]:
    """`running_launcher` on the session's database, token and encryption keys, with an API client
    authenticated for it (the chaos tests' stack)."""
    assert settings.api_token is not None and settings.encryption_keys is not None
    token = settings.api_token.get_secret_value()
    with running_launcher(
        cwd,
        DATABASE_URL=database_url,
        API_TOKEN=token,
        ENCRYPTION_KEYS=settings.encryption_keys.get_secret_value(),
    ) as launcher:
        async with httpx.AsyncClient(
            base_url=launcher.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout_s
        ) as http:
            yield launcher, http
