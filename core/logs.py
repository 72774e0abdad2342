"""Logging setup shared by every process: plain lines, or (LOG_FORMAT=json) one JSON object per
line carrying the workflow id, run id and DAG node id of the code that logged, where known."""

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

from temporalio import activity

from contracts.workflow_names import DAG_WORKFLOW

_NODE_ACTIVITY_ID = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]{0,63})-\d+(?:-load-\d+|-store|-agent-\d+)?$")
"""DagWorkflow names a node's activities `<node>-<attempt>`, `...-load-<n>`, `...-store` and
`...-agent-<n>` (node ids cannot hold anything that would make this ambiguous)."""

_CONTEXT_KEYS = ("workflow_id", "run_id", "node_id", "activity_id", "activity_type", "workflow_type")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


def temporal_context(record: logging.LogRecord) -> dict[str, Any]:
    """Workflow, run, node and activity of a record: from the running activity, else from the
    `temporal_workflow` / `temporal_activity` extras Temporal's loggers add, else from `extra=`."""
    fields: dict[str, Any] = {}
    for key in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, key, None)
        if isinstance(details, dict):
            found = {
                "workflow_id": details.get("workflow_id"),
                "run_id": details.get("run_id") or details.get("workflow_run_id"),
                "workflow_type": details.get("workflow_type"),
                "activity_id": details.get("activity_id"),
                "activity_type": details.get("activity_type"),
            }
            fields.update({k: v for k, v in found.items() if v is not None})
    if activity.in_activity():
        info = activity.info()
        fields.update(
            workflow_id=info.workflow_id,
            run_id=info.workflow_run_id,
            workflow_type=info.workflow_type,
            activity_id=info.activity_id,
            activity_type=info.activity_type,
        )
    if fields.get("workflow_type") == DAG_WORKFLOW and (
        match := _NODE_ACTIVITY_ID.match(fields.get("activity_id", ""))
    ):
        fields["node_id"] = match.group(1)
    for key in _CONTEXT_KEYS:  # an explicit `extra={"node_id": ...}` wins
        value = getattr(record, key, None)
        if value is not None:
            fields[key] = value
    return {k: v for k, v in fields.items() if v is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, Temporal context, and any other
    `extra=` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **temporal_context(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry and not key.startswith("temporal_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def setup_logging(level: str, log_format: str = "text") -> None:
    """Plain timestamped lines (or JSON lines); third-party chatter kept at WARNING."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=log_format == "json")
    for noisy in ("httpx", "httpcore", "openai", "aiosqlite", "sqlalchemy.engine"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


SECRET_QUERY = re.compile(
    r"([?&](?:[A-Za-z0-9_.-]*(?:token|secret|password|passwd|api[_-]?key|signature)"
    r"|key|sig|hash|initData|auth|authorization|code)=)[^&#\s\"]*",
    re.IGNORECASE,
)
"""A query parameter whose value is a credential: access tokens, keys, signatures, Telegram's
initData and OAuth codes."""


def redact_query(text: str) -> str:
    """`text` with the value of every credential-looking query parameter replaced."""
    return SECRET_QUERY.sub(r"\1<redacted>", text)


class RedactQuerySecrets(logging.Filter):
    """Rewrites a record so no credential is logged: uvicorn's access log writes every request's
    path with its query string (a REST or SSE `?token=`), its error log each WebSocket's, and at
    DEBUG the websockets library the handshake's headers."""

    SECRET_HEADERS = frozenset({"authorization", "sec-websocket-protocol", "cookie"})

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and args:
            if record.msg == "< %s: %s" and len(args) == 2 and str(args[0]).lower() in self.SECRET_HEADERS:
                record.args = (args[0], "<redacted>")
                return True
            record.args = tuple(redact_query(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact_query(record.msg)
        return True


SERVER_LOGGERS = ("uvicorn.access", "uvicorn.error")


def redact_access_log() -> None:
    """Install the filter on uvicorn's loggers once (idempotent); uvicorn's logging config keeps
    the filters a logger already has."""
    for name in SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactQuerySecrets) for f in logger.filters):
            logger.addFilter(RedactQuerySecrets())
