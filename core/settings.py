"""One settings object for every process (API, worker, bot, launcher).

Values come from the environment, then `.env`, then `data/generated.env` — the file the launcher
writes with a generated API token and encryption key so a fresh checkout runs with no setup.
"""

import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DATA_DIR = Path("data")
GENERATED_ENV = DATA_DIR / "generated.env"


def _split_list(value: Any) -> Any:
    """A list setting from the environment: JSON (`[1001, 1002]`) or comma-separated (`1001,1002`)."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.startswith("["):
        return json.loads(text)
    return [item.strip() for item in text.split(",") if item.strip()]


IntList = Annotated[list[int], NoDecode]
StrList = Annotated[list[str], NoDecode]


WORKER_DRAIN_S = 30.0
"""How long a stopping worker lets the activities it runs finish (a model request being answered)
before it cancels them: `make run` stops its workers first and the model last, so a request in
flight is delivered, not failed and asked again."""


class Settings(BaseSettings):
    """goalflow configuration (SPEC §6)."""

    model_config = SettingsConfigDict(
        env_file=(".env", str(GENERATED_ENV)), env_file_encoding="utf-8", extra="ignore"
    )

    environment: Literal["dev", "production"] = "dev"
    database_url: str = f"sqlite+aiosqlite:///{DATA_DIR}/goalflow.db"
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = None
    task_queue: str = "goalflow"
    api_token: SecretStr | None = None
    api_port: int = 8000
    api_host: str = "127.0.0.1"
    """Where the API listens: loopback unless told otherwise (compose sets 0.0.0.0)."""
    cors_origins: StrList = []
    """Browser origins allowed to call the API (Web App, Temporal Web UI codec calls); none by default."""
    codec_trusted_origins: StrList = []
    """Browser origins whose codec calls from this machine need no token (api/routes/codec.py):
    `make run` sets its own dev Web UI's origins so that UI decodes at first sight. Empty by
    default, and refused in production, where the Web UI goes through the codec login."""
    encryption_keys: SecretStr | None = None
    codec_keys: SecretStr | None = None
    """AES-256 keys (URL-safe base64, comma-separated, newest first) for Temporal payloads."""
    payload_blob_threshold_bytes: int = Field(default=16 * 1024, ge=1024, le=2 * 1024 * 1024)
    """A Temporal payload this large or larger keeps its pieces in the database and only their
    references in the history (core/payload_blobs.py); smaller ones stay inline."""
    telegram_bot_token: SecretStr | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_allowed_user_ids: IntList = []
    telegram_notify_chat_ids: IntList = []
    telegram_api_base: str | None = None
    telegram_webhook_url: str | None = None
    """Where Telegram posts updates (the API's `/webhook/telegram`, public HTTPS); unset: the bot
    polls. Needs TELEGRAM_WEBHOOK_SECRET."""
    telegram_webapp_url: str | None = None
    """The Web App page (the API's `/webapp`) the bot's menu button opens; unset: derived from
    TELEGRAM_WEBHOOK_URL, and with neither there is no menu button."""
    telegram_webapp_max_age_s: int = Field(default=86_400, gt=0)
    """A Web App request's `initData` older than this (its `auth_date`) is refused."""
    telegram_progress_interval_s: float = Field(default=3.0, ge=0.2, le=300)
    """At most one progress edit per chat this often (Telegram limits edits per chat)."""
    artifacts_dir: Path = DATA_DIR / "artifacts"
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"
    """`json`: one JSON object per line with workflow, run and node ids where known."""
    worker_metrics_address: str = "127.0.0.1:9464"
    """Where the worker serves Prometheus metrics (`host:port`; empty: none)."""
    otel_exporter_otlp_endpoint: str | None = None
    """An OTLP (HTTP) collector; tracing is off unless this is set."""
    http_allowlist: StrList = []
    # The default LLM provider registered on start (services/defaults.py); `local` is the
    # embedded model served by `python -m core.local_model`, `none` registers nothing.
    llm_provider: Literal["local", "openai", "openrouter", "ollama", "none"] = "local"
    openai_api_key: SecretStr | None = None
    openai_model: str = "gpt-4o-mini"
    openai_base_url: str | None = None
    openrouter_api_key: SecretStr | None = None
    openrouter_model: str = "openai/gpt-4o-mini"
    ollama_base_url: str | None = None
    ollama_model: str = "llama3.2"
    local_model_path: Path | None = None
    local_model_port: int = 8081
    local_model_threads: int | None = None
    worker_processes: int = Field(default=min(4, max(1, os.cpu_count() or 1)), ge=1, le=64)
    """Worker processes `make run` starts on the task queue (default: one per core, at most 4).
    Python runs one core's worth of workflow and activity code per process; Temporal spreads the
    task queue over all of them."""
    worker_versioning: bool = True
    """Workers poll as a Worker Deployment version (core/versioning.py): a run keeps executing on
    the build it started on; off, every worker takes every run (and must replay it)."""
    worker_deployment: str = "goalflow"
    worker_build_id: str | None = None
    """Overrides the build id derived from the workflow code (core/versioning.py)."""
    worker_promote: bool = True
    """A starting worker makes its build the current one and moves runs that replay on it."""
    wait_timeout_s: float = Field(default=60, gt=0, le=600)
    """How long a request that answers from a workflow (agent test, task, planner) waits before
    it answers 202 with the workflow id to follow."""

    @field_validator(
        "telegram_allowed_user_ids",
        "telegram_notify_chat_ids",
        "http_allowlist",
        "cors_origins",
        "codec_trusted_origins",
        mode="before",
    )
    @classmethod
    def _list_from_env(cls, value: Any) -> Any:
        return _split_list(value)

    @field_validator(
        "telegram_bot_token",
        "telegram_webhook_secret",
        "telegram_api_base",
        "telegram_webhook_url",
        "telegram_webapp_url",
        mode="before",
    )
    @classmethod
    def _telegram_blank_is_unset(cls, value: Any) -> Any:
        """`TELEGRAM_BOT_TOKEN=` in a `.env` means no bot, not a bot with an empty token."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("codec_keys")
    @classmethod
    def _codec_keys_parse(cls, value: SecretStr | None) -> SecretStr | None:
        """A malformed key stops start-up here, not at the first payload."""
        if value is not None:
            from core.codec import parse_keys  # the codec stays out of light importers' way

            parse_keys(value.get_secret_value())
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept the URLs people paste (`postgresql://`, `sqlite:///`); pick async drivers."""
        for plain, driver in (
            ("postgresql://", "postgresql+psycopg://"),
            ("postgres://", "postgresql+psycopg://"),
            ("sqlite:///", "sqlite+aiosqlite:///"),
        ):
            if url.startswith(plain):
                return driver + url[len(plain) :]
        return url

    @model_validator(mode="after")
    def _no_missing_secrets_in_production(self) -> "Settings":
        """Production must be given its secrets; only dev may run on generated ones."""
        if self.environment == "production":
            required = ("api_token", "encryption_keys", "codec_keys")
            missing = [n for n in required if getattr(self, n) is None]
            if missing:
                raise ValueError(f"{', '.join(m.upper() for m in missing)} must be set in production")
            if self.codec_trusted_origins:
                raise ValueError("CODEC_TRUSTED_ORIGINS is for make run's dev Web UI, not production")
        return self

    @model_validator(mode="after")
    def _llm_provider_configured(self) -> "Settings":
        """A hosted default provider is useless without its key; say which variable is missing."""
        needs = {"openai": ("openai_api_key",), "openrouter": ("openrouter_api_key",)}
        missing = [n.upper() for n in needs.get(self.llm_provider, ()) if getattr(self, n) is None]
        if missing:
            raise ValueError(f"LLM_PROVIDER={self.llm_provider} needs {', '.join(missing)}")
        return self

    @model_validator(mode="after")
    def _telegram_webhook_has_secret(self) -> "Settings":
        """A webhook without a secret would accept updates from anyone who finds the URL."""
        if self.telegram_webhook_url is not None and self.telegram_webhook_secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET")
        return self

    @property
    def telegram_webapp_page(self) -> str | None:
        """The Web App's URL: TELEGRAM_WEBAPP_URL, else the webhook's origin + `/webapp`."""
        if self.telegram_webapp_url:
            return self.telegram_webapp_url
        if self.telegram_webhook_url:
            parts = urlsplit(self.telegram_webhook_url)
            return f"{parts.scheme}://{parts.netloc}/webapp"
        return None

    @property
    def temporal_target(self) -> str:
        """Where clients connect: the external server if given, else the embedded dev server."""
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"

    @property
    def web_ui_url(self) -> str:
        """Base URL of the Temporal Web UI that links in API answers point to."""
        return self.temporal_ui_url or f"http://127.0.0.1:{self.temporal_ui_port}"

    @property
    def codec_endpoint(self) -> str:
        """The API's remote codec endpoint as a browser on this machine reaches it."""
        host = "127.0.0.1" if self.api_host in ("0.0.0.0", "::", "") else self.api_host
        return f"http://{host}:{self.api_port}/api/v1/codec"

    def workflow_ui_url(self, workflow_id: str) -> str:
        """The Web UI page of one workflow (its latest run)."""
        return f"{self.web_ui_url}/namespaces/{self.temporal_namespace}/workflows/{workflow_id}"


def describe_settings_error(exc: ValidationError) -> list[str]:
    """One line per bad variable, named as people set it (`TELEGRAM_ALLOWED_USER_IDS: ...`),
    without echoing the value (it may be a secret)."""
    lines = []
    for error in exc.errors(include_input=False, include_url=False):
        field = str(error["loc"][0]).upper() if error["loc"] else "settings"
        lines.append(f"{field}: {error['msg']}")
    return lines


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings; tests call `get_settings.cache_clear()` after changing env."""
    return Settings()
