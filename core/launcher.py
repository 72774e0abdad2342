"""`make run`: the whole stack as one supervised unit that stops cleanly on Ctrl-C.

Starts the Temporal dev server (unless TEMPORAL_ADDRESS names an external one), applies
migrations, then runs the worker and the API (and the bot when a token is set) as child
processes. If any child dies, everything stops, so a broken stack never looks half-alive.
"""

import asyncio
import contextlib
import secrets
import signal
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config

from contracts.search import SEARCH_ATTRIBUTES
from core.crypto import new_key
from core.settings import DATA_DIR, GENERATED_ENV, Settings, get_settings
from core.temporal import connect

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
STOP_GRACE_S = 10


def ensure_generated_secrets() -> None:
    """Dev only: create the API token and encryption key once, then reuse them on every start."""
    settings = Settings()
    lines = []
    if settings.api_token is None:
        lines.append(f"API_TOKEN={secrets.token_urlsafe(32)}")
    if settings.encryption_keys is None:
        lines.append(f"ENCRYPTION_KEYS={new_key()}")
    if lines:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
        with GENERATED_ENV.open("a") as env_file:
            env_file.write("\n".join(lines) + "\n")
        GENERATED_ENV.chmod(0o600)
        get_settings.cache_clear()


def migrate(settings: Settings) -> None:
    """Bring the app database to the newest Alembic revision."""
    if settings.database_url.startswith("sqlite"):
        DATA_DIR.mkdir(parents=True, exist_ok=True)
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, "head")


def temporal_command(settings: Settings) -> list[str]:
    """`temporal server start-dev` with a persistent SQLite file, the UI and our search attributes."""
    args = [
        str(TEMPORAL_BIN), "server", "start-dev",
        "--db-filename", str(DATA_DIR / "temporal.db"),
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
        "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
        "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
    ]  # fmt: skip
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def wait_for_temporal(settings: Settings, timeout_s: float = 60) -> None:
    """Block until the server accepts a client connection."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await connect(settings)
            return
        except RuntimeError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.5)


async def _stop(children: dict[str, asyncio.subprocess.Process]) -> None:
    for proc in reversed(list(children.values())):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
    for name, proc in children.items():
        try:
            await asyncio.wait_for(proc.wait(), STOP_GRACE_S)
        except TimeoutError:
            print(f"[goalflow] {name} did not stop in {STOP_GRACE_S}s; killing it")
            proc.kill()


async def supervise(settings: Settings) -> int:
    """Start every part, print where things are, and stop all on Ctrl-C or on any child's exit."""
    children: dict[str, asyncio.subprocess.Process] = {}
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    python = sys.executable
    try:
        if settings.temporal_address is None:
            children["temporal"] = await asyncio.create_subprocess_exec(*temporal_command(settings))
        await wait_for_temporal(settings)
        children["worker"] = await asyncio.create_subprocess_exec(python, "worker.py", cwd=ROOT)
        children["api"] = await asyncio.create_subprocess_exec(python, "-m", "api.main", cwd=ROOT)
        if settings.telegram_bot_token is not None and (ROOT / "bot" / "main.py").exists():
            children["bot"] = await asyncio.create_subprocess_exec(python, "-m", "bot.main", cwd=ROOT)
        token = settings.api_token.get_secret_value() if settings.api_token else "(unset)"
        print(
            "\n[goalflow] running — Ctrl-C stops everything\n"
            f"  API docs   http://127.0.0.1:{settings.api_port}/docs\n"
            f"  Web UI     {settings.web_ui_url}\n"
            f"  Temporal   {settings.temporal_target} (task queue {settings.task_queue})\n"
            f"  API token  {token}\n",
            flush=True,
        )
        waiters = {asyncio.ensure_future(p.wait()): n for n, p in children.items()}
        stopper = asyncio.ensure_future(stop.wait())
        done, _ = await asyncio.wait([stopper, *waiters], return_when=asyncio.FIRST_COMPLETED)
        exited = [waiters[f] for f in done if f in waiters]
        if exited:
            print(f"[goalflow] {', '.join(exited)} exited; stopping the rest")
        stopper.cancel()
        return 1 if exited else 0
    finally:
        with contextlib.suppress(ProcessLookupError):
            await _stop(children)


def main() -> None:
    """Entry point for `make run`."""
    ensure_generated_secrets()
    settings = get_settings()
    migrate(settings)  # Alembic's env runs its own event loop, so before ours starts
    sys.exit(asyncio.run(supervise(settings)))


if __name__ == "__main__":
    main()
