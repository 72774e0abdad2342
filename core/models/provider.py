"""LLM providers: an endpoint plus its credential, stored encrypted."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AnyHttpUrl, SecretStr, StrictInt, StringConstraints, field_validator, model_validator
from sqlalchemy import Column, ForeignKey, Index, Integer, String
from sqlmodel import Field, SQLModel

from core.models.common import UTCDateTime, created_at_field, updated_at_field

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]

MAX_CONCURRENCY = 10_000
MAX_REQUESTS_PER_MINUTE = 1_000_000
MAX_TOKENS_PER_MINUTE = 2_000_000_000
"""Upper bounds for the limits (the token one fits PostgreSQL's int4): beyond them a limit means
nothing, and a typo should be a 422, not a silent "no limit"."""


def limit_field(maximum: int, description: str) -> Any:
    """An optional limit: a positive whole number, null for none."""
    return Field(default=None, gt=0, le=maximum, description=description)


class ProviderKind(StrEnum):
    """Wire protocols goalflow speaks; all are OpenAI-compatible chat APIs."""

    openai = "openai"
    openrouter = "openrouter"
    ollama = "ollama"
    openai_compatible = "openai_compatible"
    local = "local"
    """The embedded llama.cpp server (`python -m core.local_model`); its row stores its base_url."""


class ConnectionStatus(StrEnum):
    """Outcome of the last `validate` call."""

    unknown = "unknown"
    ok = "ok"
    error = "error"


class ProviderLimits(SQLModel):
    """Limits that hold across every run, workflow and worker process (enforced in the database,
    `storage/provider_limits.py`); a request over a limit waits for capacity instead of failing.
    Whole numbers only: JSON `1.5`, `"3"` or `true` are 422s rather than a guess."""

    max_concurrency: StrictInt | None = limit_field(MAX_CONCURRENCY, "requests in flight at once")
    requests_per_minute: StrictInt | None = limit_field(
        MAX_REQUESTS_PER_MINUTE, "requests started in any 60-second window"
    )
    tokens_per_minute: StrictInt | None = limit_field(
        MAX_TOKENS_PER_MINUTE, "tokens (input + output) of the requests started in any 60-second window"
    )


class ProviderBase(ProviderLimits):
    name: Name = Field(max_length=100, unique=True)
    kind: ProviderKind = Field(sa_type=String(32))
    base_url: str | None = Field(default=None, max_length=500)
    is_active: bool = True


def check_base_url(kind: ProviderKind | None, base_url: str | None) -> None:
    """An endpoint must name one; only the well-known kinds have a default (422 otherwise)."""
    if kind in (ProviderKind.openai_compatible, ProviderKind.local) and not base_url:
        raise ValueError(f"base_url is required for kind {kind.value}")


def http_url(base_url: str | None) -> str | None:
    """Reject what is not an http(s) URL, located at `base_url` in the 422."""
    if base_url is not None:
        AnyHttpUrl(base_url)
    return base_url


def header_safe_key(api_key: SecretStr | None) -> SecretStr | None:
    """A key is sent in an HTTP header: visible ASCII only (no spaces, no other scripts), or 422
    now instead of an encoding error on every later call. The value is never echoed."""
    if api_key is not None and not all("!" <= char <= "~" for char in api_key.get_secret_value()):
        raise ValueError("api_key must be visible ASCII characters only (it is sent in an HTTP header)")
    return api_key


class ProviderCreate(ProviderBase):
    api_key: SecretStr | None = Field(default=None, max_length=1000)

    @field_validator("api_key")
    @classmethod
    def _header_safe(cls, api_key: SecretStr | None) -> SecretStr | None:
        return header_safe_key(api_key)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, base_url: str | None) -> str | None:
        return http_url(base_url)

    @model_validator(mode="after")
    def _base_url(self) -> "ProviderCreate":
        check_base_url(self.kind, self.base_url)
        return self


class ProviderUpdate(ProviderLimits):
    """All optional; a limit set to null is removed."""

    name: Name | None = None
    kind: ProviderKind | None = None
    base_url: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None
    api_key: SecretStr | None = Field(default=None, max_length=1000)

    @field_validator("api_key")
    @classmethod
    def _header_safe(cls, api_key: SecretStr | None) -> SecretStr | None:
        return header_safe_key(api_key)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, base_url: str | None) -> str | None:
        return http_url(base_url)


class Provider(ProviderBase, table=True):
    __table_args__ = {"sqlite_autoincrement": True}  # ids never reused (migration 0013)

    id: int | None = Field(default=None, primary_key=True)
    encrypted_api_key: str | None = None
    api_key_hint: str | None = Field(default=None, max_length=8)
    connection_status: ConnectionStatus = Field(default=ConnectionStatus.unknown, sa_type=String(16))
    last_error: str | None = None
    last_validated_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()


class ProviderPublic(ProviderBase):
    id: int
    has_api_key: bool
    api_key_hint: str | None
    connection_status: ConnectionStatus
    last_error: str | None
    last_validated_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, provider: Provider) -> "ProviderPublic":
        """The answer for a provider: the key itself never leaves the database."""
        return cls.model_validate(provider, update={"has_api_key": provider.encrypted_api_key is not None})


class ProviderLimitState(SQLModel, table=True):
    """One row per provider that has had a limited request: the row every admission locks, so
    admissions to one provider happen one at a time across all workers."""

    __tablename__ = "provider_limit_state"

    provider_id: int = Field(
        sa_column=Column(Integer, ForeignKey("provider.id", ondelete="CASCADE"), primary_key=True)
    )
    touched_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ProviderLease(SQLModel, table=True):
    """A model request to a limited provider: queued (`admitted_at` null), in flight (admitted,
    not finished) or done. In flight it holds a concurrency slot until `lease_until`, which its
    worker keeps renewing, so a killed worker's slot comes back by itself; admitted within the
    last minute it counts towards the per-minute limits with its `tokens`."""

    __tablename__ = "provider_leases"
    __table_args__ = (Index("ix_provider_leases_provider_holder", "provider_id", "holder"),)

    id: str = Field(primary_key=True, max_length=32)
    provider_id: int = Field(
        sa_column=Column(Integer, ForeignKey("provider.id", ondelete="CASCADE"), nullable=False)
    )
    holder: str = Field(max_length=600)
    """`<workflow id>/<run id>/<activity id>`: every attempt of one activity is one holder."""
    worker: str = Field(max_length=255)
    """host:pid of the worker process that holds it."""
    queued_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    admitted_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    lease_until: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    tokens: int = 0
    """The estimate while in flight, the tokens the answer reported once finished."""
