"""Safe by default: the API listens on loopback unless API_HOST says otherwise, and browsers get
CORS only for the origins CORS_ORIGINS lists."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from api.main import create_app
from core.settings import Settings
from tests.stack import ROOT, free_port


def _listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.rsplit(":", 1)
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.add(address)
    return found


def test_the_api_listens_on_loopback_only_by_default(settings: Settings, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "API_PORT": str(port), "LLM_PROVIDER": "none"}
    env.pop("API_HOST", None)
    proc = subprocess.Popen([sys.executable, "-m", "api.main"], cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not _listening_addresses(port):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        assert _listening_addresses(port) == {socket.inet_aton("127.0.0.1")[::-1].hex().upper()}
        assert httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_cors_only_for_configured_origins(settings: Settings) -> None:
    origin = "https://ui.example"
    preflight = {"Origin": origin, "Access-Control-Request-Method": "POST"}
    for origins, allowed in (([], False), ([origin], True)):
        app = create_app(settings.model_copy(update={"cors_origins": origins}))
        async with (
            LifespanManager(app),
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as http,
        ):
            response = await http.options("/api/v1/agents", headers=preflight)
            other = await http.options(
                "/api/v1/agents", headers={**preflight, "Origin": "https://evil.example"}
            )
        assert (response.headers.get("access-control-allow-origin") == origin) is allowed
        assert "access-control-allow-origin" not in other.headers
