"""`make run`'s launcher: with TEMPORAL_ADDRESS set it starts no server of its own, migrates the
database, serves on API_PORT with a polling worker, and stops everything on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

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
