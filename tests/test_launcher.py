"""`make run`'s launcher: with TEMPORAL_ADDRESS set it starts no server of its own, migrates the
database, serves on API_PORT with a polling worker, and stops everything on Ctrl-C. With its own
Temporal dev server it heals: a worker or a Temporal server killed with SIGKILL is restarted and
the stack is ready again while the API stays up."""

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from temporalio.client import Client

from core.processes import port_is_free
from core.settings import Settings
from tests.stack import (
    Availability,
    Launcher,
    alive,
    free_port,
    launcher_env,
    polling_pids,
    read_output,
    ready,
    running_launcher,
    spawn_launcher,
    until,
)

ROOT = Path(__file__).resolve().parent.parent


def test_launcher_uses_an_external_temporal_serves_ready_and_stops_on_ctrl_c(
    settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
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
    running = Launcher(
        proc=proc, api_url=f"http://127.0.0.1:{port}", temporal_target="", task_queue="", cwd=ROOT
    )
    running.reader = threading.Thread(target=read_output, args=(running,), daemon=True)
    running.reader.start()
    banner = f"http://127.0.0.1:{port}/docs"
    try:
        deadline = time.monotonic() + 90
        # The banner comes once every part answers, a poll after /health/ready can say so.
        while banner not in running.output and time.monotonic() < deadline:
            assert proc.poll() is None, running.output
            time.sleep(0.5)
        assert banner in running.output, running.output
        ready = httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=5)
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["worker"]["ok"] is True
        assert (tmp_path / "app.db").exists()  # migrated by the launcher
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        running.reader.join(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    output = running.output
    assert proc.returncode == 0, output
    assert "Fatal Python error" not in output, output
    assert "temporal server start-dev" not in output and "Temporal Server:" not in output
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


@pytest.fixture(scope="module")
def launcher(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """One launcher with its own Temporal dev server for the module's tests."""
    cwd = tmp_path_factory.mktemp("launcher")
    with running_launcher(cwd) as running:
        assert (cwd / "data" / "temporal.db").exists()
        assert (cwd / "data" / "generated.env").exists()
        yield running


async def test_a_worker_killed_with_sigkill_is_restarted_and_polls_again_while_the_api_stays_up(
    launcher: Launcher,
) -> None:
    await until(lambda: ready(launcher.api_url), "readiness", launcher, 60)
    [api_pid] = launcher.pids("api")
    worker_pid = launcher.pids("worker")[-1]
    availability = Availability(launcher.api_url)
    availability.start()
    try:
        os.kill(worker_pid, signal.SIGKILL)
        await until(lambda: launcher.pids("worker")[-1] != worker_pid, "the worker's restart", launcher, 30)
        assert f"worker (pid {worker_pid}) killed by SIGKILL" in launcher.output
        new_pid = launcher.pids("worker")[-1]

        async def new_worker_polls() -> bool:
            return new_pid in await polling_pids(launcher)

        await until(new_worker_polls, "the new worker to poll", launcher, 60)
        await until(lambda: ready(launcher.api_url), "readiness", launcher, 30)
    finally:
        availability.done.set()
        availability.join()
    assert availability.checks > 0 and availability.failures == []
    assert launcher.pids("api") == [api_pid] and alive(api_pid)


async def test_a_temporal_server_killed_with_sigkill_comes_back_on_its_port_with_its_runs(
    launcher: Launcher,
) -> None:
    await until(lambda: ready(launcher.api_url), "readiness", launcher, 60)
    [api_pid] = launcher.pids("api")
    temporal_pid = launcher.pids("temporal")[-1]
    client = await Client.connect(launcher.temporal_target)
    # A run that nobody picks up stays open: it must survive in the server's SQLite file.
    handle = await client.start_workflow(
        "NobodyRunsThis", id=f"kept-{uuid.uuid4().hex[:8]}", task_queue="nobody-polls-this"
    )
    availability = Availability(launcher.api_url)
    availability.start()
    try:
        os.kill(temporal_pid, signal.SIGKILL)
        await until(
            lambda: launcher.pids("temporal")[-1] != temporal_pid,
            "the server's restart",
            launcher,
            30,
        )
        assert f"temporal (pid {temporal_pid}) killed by SIGKILL" in launcher.output

        async def a_worker_polls_the_new_server() -> bool:
            return bool(set(launcher.pids("worker")) & await polling_pids(launcher))

        await until(a_worker_polls_the_new_server, "a worker polling again", launcher, 60)
        await until(lambda: ready(launcher.api_url), "readiness", launcher, 30)
    finally:
        availability.done.set()
        availability.join()
    again = await Client.connect(launcher.temporal_target)
    described = await again.get_workflow_handle(handle.id).describe()
    assert described.id == handle.id
    # It kept the run with a write-ahead log and no sync per commit (core/launcher.py), which
    # survives a killed process; the mode is stored in the file.
    with closing(sqlite3.connect(f"file:{launcher.cwd}/data/temporal.db?mode=ro", uri=True)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert availability.checks > 0 and availability.failures == []
    assert launcher.pids("api") == [api_pid] and alive(api_pid)


def start_refused(cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """A launcher expected to give up before starting anything: quick, or it fails the test."""
    cwd.mkdir(exist_ok=True)
    return subprocess.run(
        [sys.executable, "-m", "core.launcher"],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=60,
    )


def test_a_launcher_whose_port_is_taken_says_so_in_one_line_and_exits_without_starting(
    tmp_path: Path,
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = launcher_env(tmp_path, api_port=free_port(), temporal_port=port, ui_port=free_port())
        done = start_refused(tmp_path, env)
    refusals = [line for line in done.stdout.splitlines() if "cannot start" in line]
    assert done.returncode == 1, done.stdout
    assert len(refusals) == 1, done.stdout
    assert f"port {port} (temporal) is already in use by pid {os.getpid()} (" in refusals[0]
    assert "temporal ready" not in done.stdout and "started (pid" not in done.stdout


def test_a_launcher_killed_with_sigkill_takes_its_children_and_a_second_one_refused_its_ports(
    tmp_path: Path,
) -> None:
    ports = {"api_port": free_port(), "temporal_port": free_port(), "ui_port": free_port()}
    (tmp_path / "first").mkdir()
    env = launcher_env(tmp_path / "first", **ports)
    first = spawn_launcher(tmp_path / "first", env)
    proc = first.proc
    children: list[int] = []
    try:
        deadline = time.monotonic() + 240  # start-up on a busy 2-core machine takes a while
        while not ready(first.api_url):
            assert proc.poll() is None and time.monotonic() < deadline, first.output
            time.sleep(0.5)
        children = [pid for name in ("temporal", "worker", "api") for pid in first.pids(name)]
        [temporal], [api] = first.pids("temporal"), first.pids("api")

        second = start_refused(tmp_path / "second", launcher_env(tmp_path / "second", **ports))
        assert second.returncode == 1, second.stdout
        assert "temporal ready" not in second.stdout and "started (pid" not in second.stdout
        [refusal] = [line for line in second.stdout.splitlines() if "cannot start" in line]
        assert f"port {ports['temporal_port']} (temporal) is already in use by pid {temporal} (" in refusal
        assert f"port {ports['api_port']} (api) is already in use by pid {api} (" in refusal

        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 10
        while [pid for pid in children if alive(pid)] or not all(map(port_is_free, ports.values())):
            assert time.monotonic() < deadline, f"left alive: {[p for p in children if alive(p)]}"
            time.sleep(0.1)
    finally:
        for pid in [proc.pid, *children]:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize(("provider", "expected"), [("local", True), ("none", False), ("openai", False)])
def test_the_local_model_is_a_supervised_child_only_with_llm_provider_local(
    provider: str, expected: bool
) -> None:
    from core.launcher import children

    settings = Settings(llm_provider=provider, openai_api_key="sk-unused")
    parts = {child.name: child for child in children(settings)}
    assert ("model" in parts) is expected
    if expected:
        assert list(parts["model"].argv)[-2:] == ["-m", "core.local_model"]
        assert parts["model"].ports == (settings.local_model_port,)
        assert parts["model"].ready is not None
        # It stops after the children that send it requests, with time to finish an answer.
        assert parts["model"].stop_last and (parts["model"].stop_grace_s or 0) >= 30
    assert not any(child.stop_last for name, child in parts.items() if name != "model")
    assert parts["api"].ports == (settings.api_port,)  # checked before the start, like the others


async def test_the_running_banner_waits_until_the_api_and_a_worker_answer(tmp_path: Path) -> None:
    env = launcher_env(tmp_path, api_port=free_port(), temporal_port=free_port(), ui_port=free_port())
    launcher = spawn_launcher(tmp_path, env)
    try:
        await until(
            lambda: "running — Ctrl-C stops everything" in launcher.output, "the banner", launcher, 240
        )
        # The moment it says so, the API and a worker answer (it used to be ~20 s early).
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(f"{launcher.api_url}/health")).status_code == 200
        assert await polling_pids(launcher), launcher.output
        lines = launcher.output.splitlines()
        banner = next(i for i, line in enumerate(lines) if "running — Ctrl-C" in line)
        waited = [i for i, line in enumerate(lines) if "starting — waiting for" in line]
        assert all(i < banner for i in waited)
        launcher.proc.send_signal(signal.SIGINT)
        assert launcher.proc.wait(timeout=60) == 0, launcher.output
    finally:
        if launcher.proc.poll() is None:
            os.killpg(launcher.proc.pid, signal.SIGKILL)


def test_make_run_starts_the_launcher_itself_with_no_wrapper_between() -> None:
    # A kill -9 of a `uv run` wrapper left the real launcher and all its children running.
    # Under `make test` this is a nested make, which prints its directory changes around the plan.
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    [launch] = [line for line in planned.stdout.splitlines() if "core.launcher" in line]
    assert launch.endswith("/bin/python -m core.launcher") and "uv run" not in launch, planned.stdout
