"""The processes a goalflow benchmark runs against, each in its own process as under `make run`:
a Temporal dev server, a fake OpenAI-compatible LLM with a fixed latency, a database, and N
worker processes (`python -m worker`). Their CPU is then theirs, not the benchmark's."""

import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from tests.fakes.openai_server import FakeOpenAI, Handler, serve, tool_call

ROOT = Path(__file__).resolve().parent.parent
ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PLAN_TOOL = "submit_dag"
"""The planner's output tool (`workflows.planning.PLAN_TOOL`): the fake answers it with a plan."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _plan_or_echo(plan: dict[str, Any]) -> Any:
    def handle(body: dict[str, Any]) -> dict[str, Any]:
        tools = [t["function"]["name"] for t in body.get("tools") or []]
        if PLAN_TOOL in tools:
            return tool_call(PLAN_TOOL, plan)
        last = body["messages"][-1]["content"]
        return {"role": "assistant", "content": f"answer: {str(last)[-40:]}"}

    return handle


def _serve_fake(
    sock: socket.socket,
    latency: float,
    plan: dict[str, Any],
    handler: Handler | None,
    paces: dict[str, float],
) -> None:
    answer = handler or _plan_or_echo(plan)
    serve(FakeOpenAI(latency=latency, detect_aborts=False, default_handler=answer, paces=paces), sock)


@dataclass
class FakeProcess:
    """The fake LLM in its own process."""

    process: multiprocessing.process.BaseProcess
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return dict(httpx.get(f"http://127.0.0.1:{self.port}/_fake/stats", timeout=10).json())

    def reset(self) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_fake/reset", timeout=10)


@contextmanager
def fake_llm(
    latency: float,
    plan: dict[str, Any],
    *,
    handler: Handler | None = None,
    paces: dict[str, float] | None = None,
) -> Iterator[FakeProcess]:
    """Fork the fake before anything else starts threads in this process. It answers the plan
    tool with `plan` and echoes otherwise, or answers everything with `handler`; a streamed
    answer for a model in `paces` comes word by word that many seconds apart."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    process = multiprocessing.get_context("fork").Process(
        target=_serve_fake, args=(sock, latency, plan, handler, paces or {}), daemon=True
    )
    process.start()
    sock.close()
    fake = FakeProcess(process=process, port=port)
    deadline = time.monotonic() + 30
    while True:
        try:
            fake.stats()
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield fake
    finally:
        process.terminate()
        process.join(5)


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database when one is reachable (the production shape), else SQLite."""
    name = f"goalflow_bench_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError:
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{folder}/bench.db"
        return
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class Workers:
    """`python -m worker` processes; their CPU time and memory are read from /proc."""

    processes: list[subprocess.Popen[bytes]]
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of every worker process so far."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0.0
        for proc in self.processes:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        return total

    def memory_mb(self) -> list[tuple[float, float]]:
        """(resident now, peak resident) per worker process, in MB."""
        sizes = []
        for proc in self.processes:
            status = dict(
                line.split(":", 1) for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines()
            )
            sizes.append((int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024))
        return sizes


@contextmanager
def workers(count: int, env: dict[str, str], *, module: str = "worker") -> Iterator[Workers]:
    """Start `count` workers (`python -m <module>`) with `env` (the settings), as `make run` would."""
    with tempfile.NamedTemporaryFile(prefix="goalflow-bench-worker-", suffix=".log", delete=False) as log:
        processes = [
            subprocess.Popen(
                [sys.executable, "-m", module],
                cwd=ROOT,
                env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for _ in range(count)
        ]
    try:
        yield Workers(processes=processes, log=Path(log.name))
    finally:
        for proc in processes:
            proc.terminate()
        for proc in processes:
            with suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            if proc.poll() is None:
                proc.kill()
