"""`make run`: the whole stack as one supervised unit that stops cleanly on Ctrl-C.

Applies migrations, then runs the Temporal dev server (unless TEMPORAL_ADDRESS names an
external one; its SQLite file keeps every run across restarts), the worker and the API (and the
bot when a token is set) under `core.supervisor`: a child that dies is restarted with backoff,
one that keeps failing right at start-up stops everything with its last output, Ctrl-C stops all.
A port already taken (by a leftover stack or anything else) ends it at once with one line naming
the port and its holder, and a launcher killed even with SIGKILL takes its children with it.

With its own dev server it also makes the first look work with no flags and no login: the
Temporal CLI's profile points at this stack with the codec (core/temporal_cli_config.py), and the
dev Web UI's origins are trusted by the API's codec (CODEC_TRUSTED_ORIGINS, api/routes/codec.py).
"""

import asyncio
import json
import os
import secrets
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from pydantic import ValidationError

from contracts.search import SEARCH_ATTRIBUTES
from core import local_model
from core.codec import new_codec_key
from core.crypto import new_key
from core.settings import (
    DATA_DIR,
    GENERATED_ENV,
    WORKER_DRAIN_S,
    Settings,
    describe_settings_error,
    get_settings,
)
from core.stack_ready import announce_when_answering
from core.supervisor import Child, Supervisor
from core.temporal import connect
from core.temporal_cli_config import CliConfigError, CliProfile, write_profile

ROOT = Path(__file__).resolve().parent.parent
TEMPORAL_BIN = Path(sys.executable).parent / "temporal"
HELD_AFTER_KEY = "system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute"
HELD_AFTER_ATTEMPTS = 2
MODEL_STOP_GRACE_S = 60.0
"""How long the local model may take to stop after SIGTERM. It stops after every child that asks
it, and the longest answer (a long prompt, then MAX_ANSWER_TOKENS) takes tens of seconds on 2
cores (docs/running.md's measurements), so one being generated can still be delivered."""


def ensure_generated_secrets() -> None:
    """Dev only: create the API token and encryption keys once, then reuse them on every start."""
    settings = Settings()
    lines = []
    if settings.api_token is None:
        lines.append(f"API_TOKEN={secrets.token_urlsafe(32)}")
    if settings.encryption_keys is None:
        lines.append(f"ENCRYPTION_KEYS={new_key()}")
    if settings.codec_keys is None:
        lines.append(f"CODEC_KEYS={new_codec_key()}")
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
    config.set_main_option("script_location", str(ROOT / "migrations"))  # from any directory
    config.attributes["database_url"] = settings.database_url
    command.upgrade(config, "head")


def temporal_command(settings: Settings) -> list[str]:
    """`temporal server start-dev` with a persistent SQLite file, the UI and our search attributes."""
    args = [
        str(TEMPORAL_BIN), "server", "start-dev",
        "--db-filename", str((DATA_DIR / "temporal.db").resolve()),
        # The server holds one SQLite connection: every read waits for the write before it. A
        # write-ahead log without a sync per commit makes each write short; a killed server loses
        # nothing (only a power cut can take the last commits).
        "--sqlite-pragma", "journal_mode=wal",
        "--sqlite-pragma", "synchronous=normal",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        # The Web UI decodes payloads through the API (for whoever holds the token).
        "--ui-codec-endpoint", settings.codec_endpoint,
        "--namespace", settings.temporal_namespace,
        "--log-level", "warn",
        "--dynamic-config-value", "matching.numTaskqueueReadPartitions=1",
        "--dynamic-config-value", "matching.numTaskqueueWritePartitions=1",
        # A run whose workflow task failed twice in a row is marked (TemporalReportedProblems),
        # so /health/ready can count held runs (services/held_runs.py).
        "--dynamic-config-value", f"{HELD_AFTER_KEY}={HELD_AFTER_ATTEMPTS}",
    ]  # fmt: skip
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    return args


async def temporal_is_up(settings: Settings) -> bool:
    """Whether the server accepts a client connection (the supervisor's readiness check)."""
    try:
        await connect(settings)
    except RuntimeError:
        return False
    return True


async def wait_for_temporal(settings: Settings, timeout_s: float = 60) -> None:
    """Block until an external server accepts a client connection."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await temporal_is_up(settings):
        if asyncio.get_running_loop().time() > deadline:
            raise RuntimeError(f"Temporal at {settings.temporal_target} is unreachable")
        await asyncio.sleep(0.5)


def dev_ui_origins(settings: Settings) -> list[str]:
    """The origins of the dev server's Web UI (it listens on loopback, under either name), whose
    codec calls the API answers without a token (api/routes/codec.py says why that is safe)."""
    port = settings.temporal_ui_port
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}"]


def api_env(settings: Settings) -> dict[str, str]:
    """What only the API child gets: trust in the dev Web UI when the dev server is ours. Not with
    an external server (its UI is elsewhere) nor in production (which refuses the setting)."""
    if settings.temporal_address is not None or settings.environment != "dev":
        return {}
    return {"CODEC_TRUSTED_ORIGINS": json.dumps(dev_ui_origins(settings))}


def worker_metrics_env(settings: Settings, index: int) -> dict[str, str]:
    """Each worker process after the first serves its metrics on the next port."""
    host, _, port = settings.worker_metrics_address.rpartition(":")
    if index == 0 or not port.isdigit():
        return {}
    return {"WORKER_METRICS_ADDRESS": f"{host}:{int(port) + index}"}


def children(settings: Settings) -> list[Child]:
    """The processes of `make run`, in start order; a new one is one more line here."""
    python = sys.executable
    # The children share the launcher's working directory, so ./data, .env and relative paths
    # in settings mean the same to all; PYTHONPATH finds the code. Python block-buffers piped
    # stdout, and the supervisor should see each line as it is written.
    env = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "PYTHONUNBUFFERED": "1",
    }
    parts: list[Child] = []
    up: tuple[str, ...] = ()  # restart no client into a Temporal server that is not up yet
    if settings.temporal_address is None:
        up = ("temporal",)
        parts.append(
            Child(
                "temporal",
                temporal_command(settings),
                ready=lambda: temporal_is_up(settings),
                ports=(settings.temporal_port, settings.temporal_ui_port),
            )
        )
    for index in range(settings.worker_processes):  # Temporal spreads the task queue over them
        name = "worker" if index == 0 else f"worker-{index + 1}"
        worker_env = {**env, **worker_metrics_env(settings, index)}
        parts.append(
            Child(
                name,
                [python, "-m", "worker"],
                env=worker_env,
                requires=up,
                # It lets the activities it runs finish first (core.settings.WORKER_DRAIN_S).
                stop_grace_s=WORKER_DRAIN_S + 10,
            )
        )
    parts.append(
        Child(
            "api",
            [python, "-m", "api.main"],
            env={**env, **api_env(settings)},
            requires=up,
            ports=(settings.api_port,),
        )
    )
    if settings.llm_provider == "local":
        # Last, so nothing waits for the model to load; the model file is provisioned in main().
        # Stopped after every child that sends it requests (the bot started after it too).
        parts.append(
            Child(
                "model",
                [python, "-m", "core.local_model"],
                env=env,
                ready=lambda: local_model.answers(settings),
                ports=(settings.local_model_port,),
                stop_last=True,
                stop_grace_s=MODEL_STOP_GRACE_S,
            )
        )
    if settings.telegram_bot_token is not None:  # a blank TELEGRAM_BOT_TOKEN counts as unset
        # Polls Telegram, or with TELEGRAM_WEBHOOK_URL handles what the API's webhook received;
        # either way it follows runs (approvals, progress), so it needs Temporal like the worker.
        parts.append(Child("bot", [python, "-m", "bot.main"], env=env, requires=up))
    return parts


def decoding_line(settings: Settings) -> str:
    """How payloads (encrypted in Temporal) get shown decoded, for the banner."""
    if api_env(settings):
        return "the Web UI above decodes payloads by itself (no login on this machine)"
    return f"{settings.codec_endpoint}/login once per browser (payloads are encrypted)"


def cli_profile(settings: Settings) -> CliProfile | str | None:
    """Point the Temporal CLI at our own dev server (core/temporal_cli_config.py says why only
    there); what it could not do is a reason for the banner, the stack runs anyway."""
    if settings.temporal_address is not None:
        return None
    try:
        return write_profile(settings)
    except CliConfigError as exc:
        return str(exc)


def cli_line(cli: CliProfile | str | None) -> str:
    """How to run the Temporal CLI against this stack, for the banner."""
    temporal = os.path.relpath(TEMPORAL_BIN) if TEMPORAL_BIN.is_relative_to(Path.cwd()) else str(TEMPORAL_BIN)
    if cli is None:  # an external server: the CLI is configured by whoever runs it
        return f"{temporal} --address ... (no profile written for an external server)"
    if isinstance(cli, str):
        return f"no profile written ({cli}); pass --address, --codec-endpoint and --codec-auth"
    if cli.is_default:
        return f"{temporal} workflow list (profile default in {cli.path}, payloads decoded)"
    return (
        f"{temporal} --profile {cli.profile} workflow list (or TEMPORAL_PROFILE={cli.profile}; "
        f"your own default profile in {cli.path} is kept)"
    )


async def supervise(settings: Settings) -> int:
    """Run every part until Ctrl-C; a part that dies is restarted, one that cannot start ends it."""
    if settings.temporal_address is not None:
        await wait_for_temporal(settings)
    else:
        DATA_DIR.mkdir(parents=True, exist_ok=True)
    token = settings.api_token.get_secret_value() if settings.api_token else "(unset)"

    def banner() -> None:
        # Once every part answers: a launcher that gave up (a port taken) leaves the profile of
        # the stack that holds the port alone.
        cli = cli_profile(settings)
        print(
            "\n[goalflow] running — Ctrl-C stops everything\n"
            f"  API docs   http://{settings.api_host}:{settings.api_port}/docs\n"
            f"  Web UI     {settings.web_ui_url}\n"
            f"  Decoding   {decoding_line(settings)}\n"
            f"  Temporal   {settings.temporal_target} (task queue {settings.task_queue})\n"
            f"  CLI        {cli_line(cli)}\n"
            f"  API token  {token}\n",
            flush=True,
        )

    supervisor = Supervisor(children(settings), tag="goalflow")
    announcing: list[asyncio.Task[None]] = []

    def started() -> None:
        # Every child started; "running" only once each part answers (core/stack_ready.py).
        announce = announce_when_answering(settings, banner, supervisor.log)
        announcing.append(asyncio.get_running_loop().create_task(announce))

    try:
        return await supervisor.run(on_started=started)
    finally:
        for task in announcing:
            task.cancel()


def main() -> None:
    """Entry point for `make run`; bad settings end it with one line per variable, no traceback."""
    try:
        ensure_generated_secrets()
        settings = get_settings()
    except ValidationError as exc:
        sys.exit("\n".join(f"[goalflow] bad setting {line}" for line in describe_settings_error(exc)))
    migrate(settings)  # Alembic's env runs its own event loop, so before ours starts
    if settings.llm_provider == "local":
        print("[goalflow] local model: checking data/models (the first start downloads ~98 MB)", flush=True)
        try:
            local_model.provision(settings)
        except local_model.ProvisionError as exc:
            sys.exit(f"[goalflow] cannot provision the local model: {exc} (or set LLM_PROVIDER)")
    sys.exit(asyncio.run(supervise(settings)))


if __name__ == "__main__":
    main()
