"""MCP tool servers: how to reach one (stdio command or Streamable HTTP URL), its secrets
encrypted at rest, and the tools it listed when it was last checked."""

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AnyHttpUrl, SecretStr, StringConstraints, model_validator
from sqlalchemy import String
from sqlmodel import Field, SQLModel

from contracts.mcp import MCP_SEPARATOR, SERVER_NAME_PATTERN, Approval, McpTool, needs_approval
from core.models.common import created_at_field, json_field, updated_at_field

Transport = Literal["stdio", "http"]
MAX_SECRETS = 50
MAX_ARGS = 100
SECRET_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$"
"""Environment variable and HTTP header names: no spaces, no `=`, no control characters."""


def _check_name(name: str) -> str:
    if MCP_SEPARATOR in name:
        raise ValueError(f"a server name may not contain {MCP_SEPARATOR!r} (it separates server and tool)")
    return name


def _check_args(args: list[str]) -> list[str]:
    if len(args) > MAX_ARGS or any(len(a) > 2000 or "\x00" in a for a in args):
        raise ValueError(f"at most {MAX_ARGS} args of up to 2000 characters, without NUL")
    return args


def _http_url(url: str) -> str:
    AnyHttpUrl(url)
    return url


def _secrets(what: str) -> AfterValidator:
    """Names that an environment or an HTTP header can carry; values never echoed."""

    def check(values: dict[str, SecretStr]) -> dict[str, SecretStr]:
        if len(values) > MAX_SECRETS:
            raise ValueError(f"at most {MAX_SECRETS} {what}")
        for key, value in values.items():
            if not re.fullmatch(SECRET_NAME_PATTERN, key):
                raise ValueError(f"{what} name {key[:100]!r} is not a valid name")
            text = value.get_secret_value()
            if len(text) > 4000 or any(ord(char) < 32 and char != "\t" for char in text):
                raise ValueError(f"the value of {what} {key!r} is too long or holds control characters")
        return values

    return AfterValidator(check)


ServerName = Annotated[str, StringConstraints(pattern=SERVER_NAME_PATTERN), AfterValidator(_check_name)]
Args = Annotated[list[str], AfterValidator(_check_args)]
HttpUrlText = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_http_url)]
Env = Annotated[dict[str, SecretStr], _secrets("env")]
Headers = Annotated[dict[str, SecretStr], _secrets("header")]


class McpServerFields(SQLModel):
    """What a person sets (besides secrets), shared by create, update and the answer."""

    transport: Transport = Field(sa_type=String(8))
    command: str | None = Field(default=None, max_length=500)
    args: list[str] = json_field(default_factory=list)
    cwd: str | None = Field(default=None, max_length=500)
    url: str | None = Field(default=None, max_length=1000)
    approval: Approval = Field(default="destructive", sa_type=String(16))
    timeout_s: float = Field(default=120.0, gt=0, le=3600)
    """How long one call may take before it is given up (its activity's start-to-close)."""


def check_connection(transport: Transport | None, command: str | None, url: str | None) -> None:
    if transport == "stdio" and not command:
        raise ValueError("a stdio server needs a command")
    if transport == "http" and not url:
        raise ValueError("an http server needs a url")
    if transport == "stdio" and url:
        raise ValueError("a stdio server takes a command, not a url")
    if transport == "http" and command:
        raise ValueError("an http server takes a url, not a command")


class McpServerCreate(McpServerFields):
    """`POST /api/v1/mcp-servers`."""

    name: ServerName
    args: Args = Field(default_factory=list)
    url: HttpUrlText | None = None
    env: Env = Field(default_factory=dict)
    headers: Headers = Field(default_factory=dict)

    @model_validator(mode="after")
    def _connection(self) -> "McpServerCreate":
        check_connection(self.transport, self.command, self.url)
        if self.transport == "stdio" and self.headers:
            raise ValueError("headers are for http servers; a stdio server takes env")
        if self.transport == "http" and (self.env or self.args or self.cwd):
            raise ValueError("env, args and cwd are for stdio servers; an http server takes headers")
        return self


class McpServerUpdate(SQLModel):
    """`PATCH /api/v1/mcp-servers/{id}`: the fields given replace the stored ones (`env` and
    `headers` as a whole); the server is listed again before anything is saved."""

    name: ServerName | None = None
    command: str | None = Field(default=None, max_length=500)
    args: Args | None = None
    cwd: str | None = Field(default=None, max_length=500)
    url: HttpUrlText | None = None
    approval: Approval | None = None
    timeout_s: float | None = Field(default=None, gt=0, le=3600)
    env: Env | None = None
    headers: Headers | None = None


class McpServer(McpServerFields, table=True):
    __tablename__ = "mcp_servers"
    __table_args__ = {"sqlite_autoincrement": True}

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=32, unique=True)
    encrypted_env: str | None = None
    """The `env` mapping as JSON, encrypted (core/crypto.py) like provider keys."""
    encrypted_headers: str | None = None
    secret_hints: dict[str, str] = json_field(default_factory=dict)
    """`env:NAME` / `header:NAME` → the last characters of the value, so a person can tell them apart."""
    tools: list[dict[str, Any]] = json_field(default_factory=list)
    """Every tool the server listed (`contracts.mcp.McpTool` as JSON) at the last check."""
    skipped_tools: list[str] = json_field(default_factory=list)
    """Tools listed under names a model cannot call (`contracts.mcp.usable_name`)."""
    last_error: str | None = None
    created_at: datetime = created_at_field()
    updated_at: datetime = updated_at_field()

    def listed_tools(self) -> list[McpTool]:
        """The tools it listed, with what this row says now: its id, its `approval` setting
        applied to each tool's annotations, its timeout."""
        tools = [McpTool.model_validate(tool) for tool in self.tools]
        return [
            tool.model_copy(
                update={
                    "server_id": self.id or 0,
                    "needs_approval": needs_approval(self.approval, tool.annotations),
                    "timeout_s": self.timeout_s,
                }
            )
            for tool in tools
        ]


class McpServerPublic(McpServerFields):
    """A server as the API answers it: secret names with a hint, never a value."""

    id: int
    name: str
    env: dict[str, str]
    headers: dict[str, str]
    tools: list[McpTool]
    skipped_tools: list[str]
    last_error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, server: McpServer) -> "McpServerPublic":
        def hints(prefix: str) -> dict[str, str]:
            return {
                key.removeprefix(prefix): hint
                for key, hint in server.secret_hints.items()
                if key.startswith(prefix)
            }

        return cls(
            id=server.id or 0,
            name=server.name,
            transport=server.transport,
            command=server.command,
            args=server.args,
            cwd=server.cwd,
            url=server.url,
            approval=server.approval,
            timeout_s=server.timeout_s,
            env=hints("env:"),
            headers=hints("header:"),
            tools=server.listed_tools(),
            skipped_tools=server.skipped_tools,
            last_error=server.last_error,
            created_at=server.created_at,
            updated_at=server.updated_at,
        )
