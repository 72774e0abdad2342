"""Approve / Reject prompts in Telegram: their durable state and what they show.

A prompt is created once per `node_waiting_approval` event (keyed by execution and stream
offset), so a restarted bot that reads the same event again sends nothing twice. The prompt's
opaque id travels in the buttons' callback data; the decision is claimed with a conditional
update, so of two presses exactly one signals the workflow. The signal itself goes through
`services.dag_executions.decide`, the same call as REST's approve/reject.

An execution paused at its token budget (`on_budget: "ask"`) gets a prompt the same way, from its
`execution_budget_reached` event, under the node id `BUDGET_WAIT` (no node can have it): "Raise
budget x2" goes through `services.dag_executions.raise_budget` (REST's `POST .../budget`), "Stop"
through `cancel`.
"""

import json
import secrets
from typing import Any

from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.dag import NodeOutput, NodeState, NodeStatus
from contracts.templates import TemplateError, resolve
from core.errors import DomainError
from core.models import TelegramApproval, TelegramWatch
from core.models.common import utcnow
from core.settings import Settings
from services import dag_executions, dag_resume

PREVIEW_CHARS = 700
"""How much of a node's input a prompt shows."""

APPROVED = "approved"
REJECTED = "rejected"
ANSWERED = "answered"
ELSEWHERE = "elsewhere"
GONE = "gone"
RAISED = "raised"
STOPPED = "stopped"
"""A budget prompt's decisions: the budget was raised, or the run stopped (cancelled)."""
BUDGET_WAIT = "@budget"
"""The node id of a budget prompt: node ids start with a letter or `_`, so none collides."""


def new_id() -> str:
    """16 URL-safe characters: unguessable, and short enough for 64-byte callback data."""
    return secrets.token_urlsafe(12)


async def open_for_event(
    session: AsyncSession, *, execution_id: str, node_id: str, offset: int
) -> TelegramApproval:
    """The prompt for one wait, created the first time its event is read."""
    query = select(TelegramApproval).where(
        TelegramApproval.execution_id == execution_id, TelegramApproval.event_offset == offset
    )
    found = (await session.exec(query)).first()
    if found is not None:
        return found
    row = TelegramApproval(id=new_id(), execution_id=execution_id, node_id=node_id, event_offset=offset)
    session.add(row)
    await session.commit()
    await session.refresh(row)
    return row


async def get(session: AsyncSession, approval_id: str) -> TelegramApproval | None:
    row = await session.get(TelegramApproval, approval_id)
    if row is not None:
        await session.refresh(row)  # another process (or task) may have changed it
    return row


async def mark_sent(session: AsyncSession, approval_id: str, *, text: str, messages: list[list[int]]) -> None:
    row = await session.get(TelegramApproval, approval_id)
    if row is None:
        return
    row.text, row.messages, row.notified = text, messages, True
    session.add(row)
    await session.commit()


async def claim(
    session: AsyncSession, approval_id: str, *, decision: str, by: str
) -> TelegramApproval | None:
    """Record the decision unless one is recorded already; the row, or None if someone was first."""
    result = await session.exec(
        update(TelegramApproval)
        .where(col(TelegramApproval.id) == approval_id, col(TelegramApproval.decision).is_(None))
        .values(decision=decision, decided_by=by[:200], decided_at=utcnow())
    )
    await session.commit()
    if result.rowcount != 1:
        return None
    row = await session.get(TelegramApproval, approval_id)
    if row is not None:
        await session.refresh(row)
    return row


async def open_by_message(session: AsyncSession, chat_id: int, message_id: int) -> TelegramApproval | None:
    """The undecided prompt one of whose copies is this chat's message, if any."""
    rows = (
        await session.exec(select(TelegramApproval).where(col(TelegramApproval.decision).is_(None)))
    ).all()
    return next((row for row in rows if [chat_id, message_id] in row.messages), None)


def parse_answer(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A person's reply to a tool's question as the fields its form asks for: a JSON object, or
    `field=value` lines; values become the types the schema gives (numbers, booleans). ValueError
    names what is wrong."""
    text = text.strip()
    if text.startswith("{"):
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object ({exc.msg})") from None
        if not isinstance(given, dict):
            raise ValueError("not a JSON object")
        return given
    properties: dict[str, Any] = schema.get("properties") or {}
    answer: dict[str, Any] = {}
    for line in filter(None, (part.strip() for part in text.replace(";", "\n").splitlines())):
        key, sep, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not key:
            raise ValueError(f"{line[:50]!r} is not field=value")
        if properties and key not in properties:
            raise ValueError(f"unknown field {key!r} (the form asks for: {', '.join(properties)})")
        answer[key] = _typed(value, (properties.get(key) or {}).get("type"), key)
    missing = [name for name in schema.get("required") or [] if name not in answer]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    return answer


def _typed(value: str, kind: str | None, key: str) -> Any:
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
    except ValueError:
        raise ValueError(f"{key} must be {'an integer' if kind == 'integer' else 'a number'}") from None
    if kind == "boolean":
        if value.lower() not in ("true", "false", "yes", "no"):
            raise ValueError(f"{key} must be true or false")
        return value.lower() in ("true", "yes")
    return value


async def release(session: AsyncSession, approval_id: str) -> None:
    """Undo a claim whose signal could not be delivered (Temporal unreachable): press again."""
    await session.exec(
        update(TelegramApproval)
        .where(col(TelegramApproval.id) == approval_id)
        .values(decision=None, decided_by=None, decided_at=None)
    )
    await session.commit()


async def settle_open(
    session: AsyncSession, execution_id: str, *, node_id: str | None, decision: str, by: str
) -> list[TelegramApproval]:
    """Close every undecided prompt of an execution (one node's, or all): decided elsewhere, or
    the wait ended. Returns the prompts closed now, whose messages need editing."""
    query = select(TelegramApproval).where(
        TelegramApproval.execution_id == execution_id, col(TelegramApproval.decision).is_(None)
    )
    if node_id is not None:
        query = query.where(TelegramApproval.node_id == node_id)
    settled = []
    for row in (await session.exec(query)).all():
        claimed = await claim(session, row.id, decision=decision, by=by)
        if claimed is not None:
            settled.append(claimed)
    return settled


async def unsent(session: AsyncSession) -> list[TelegramApproval]:
    """Prompts created but not sent (the bot stopped in between)."""
    query = select(TelegramApproval).where(
        col(TelegramApproval.notified).is_(False), col(TelegramApproval.decision).is_(None)
    )
    return list((await session.exec(query)).all())


# ---------------------------------------------------------------------------- stream offsets


async def watch_offset(session: AsyncSession, execution_id: str) -> int:
    """The last offset handled for an execution (-1: start from its first event)."""
    row = await session.get(TelegramWatch, execution_id)
    return row.offset if row is not None else -1


async def save_watch(session: AsyncSession, execution_id: str, *, offset: int, closed: bool = False) -> None:
    row = await session.get(TelegramWatch, execution_id) or TelegramWatch(execution_id=execution_id)
    row.offset, row.closed = max(row.offset, offset), closed
    session.add(row)
    await session.commit()


async def open_watches(session: AsyncSession) -> list[str]:
    """Executions being followed whose stream has not ended yet."""
    query = select(TelegramWatch.execution_id).where(col(TelegramWatch.closed).is_(False))
    return list((await session.exec(query)).all())


async def closed_watches(session: AsyncSession, execution_ids: list[str]) -> set[str]:
    if not execution_ids:
        return set()
    query = select(TelegramWatch.execution_id).where(
        col(TelegramWatch.execution_id).in_(execution_ids), col(TelegramWatch.closed)
    )
    return set((await session.exec(query)).all())


# ---------------------------------------------------------------------------- Temporal side


def running_query(settings: Settings) -> str:
    """Visibility query for the DAG executions that may wait for a person (this task queue)."""
    return (
        "WorkflowType = 'DagWorkflow' AND ExecutionStatus = 'Running' "
        f"AND TaskQueue = '{settings.task_queue}'"
    )


async def running_executions(client: Client, settings: Settings, *, limit: int = 1000) -> list[str]:
    return [wf.id async for wf in client.list_workflows(running_query(settings), limit=limit)]


async def parent_of(client: Client, execution_id: str) -> str | None:
    """The workflow that started an execution as its child (a goal run), if any."""
    try:
        return (await client.get_workflow_handle(execution_id).describe()).parent_id
    except RPCError:
        return None


async def waiting_node(
    client: Client, settings: Settings, execution_id: str, node_id: str
) -> tuple[bool, str]:
    """Whether the node still waits for approval, and a preview of the input it would run with
    (templates resolved from the outputs so far)."""
    try:
        detail = await dag_executions.get_execution(client, settings, execution_id)
    except DomainError:
        return False, ""
    state = next((n for n in detail.nodes if n.id == node_id), None)
    if state is None or state.status != NodeStatus.waiting_approval:
        return False, ""
    try:
        first = await dag_resume.first_input(client, execution_id)
    except DomainError:
        first = None
    spec = next((n for n in first.spec.nodes if n.id == node_id), None) if first else None
    if first is None or spec is None:
        return True, ""
    outputs = {n.id: n.node_output() for n in detail.nodes if n.status == NodeStatus.succeeded}
    label = f"tool {spec.tool}" if spec.tool else f"agent {spec.agent}"
    if state.question is not None or (state.waiting_reason or "approval") != "approval":
        # An MCP tool's call inside the agent's run, or a tool's question: that is what waits.
        return True, f"{label}\n{_asked(state)}"
    raw: Any = spec.input if spec.tool else spec.prompt
    return True, f"{label}\n{_preview(raw, first.params, outputs)}"


def _asked(state: NodeState) -> str:
    """What a node waits for inside its run: the tool call, or the question and its fields."""
    text = state.waiting_reason or ""
    if state.question is not None:
        fields = list((state.question.get("requested_schema") or {}).get("properties") or {})
        if fields:
            shape = ", ".join(f"{name}=…" for name in fields)
            text += f"\nReply to this message with {shape} to answer (Approve answers with no fields)."
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


def _preview(raw: Any, params: dict[str, Any], outputs: dict[str, NodeOutput]) -> str:
    try:
        value = resolve(raw, params=params, outputs=outputs)
    except TemplateError:
        value = raw
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)
    return text if len(text) <= PREVIEW_CHARS else text[: PREVIEW_CHARS - 1] + "…"


# ---------------------------------------------------------------------------- token budget


def raised_budget(budget: int, used: int) -> int:
    """What "Raise budget x2" asks for: twice the budget, and always the budget again above what
    was used (nodes running in parallel can overshoot a budget)."""
    return budget * 2 if budget * 2 > used else used + budget


async def budget_wait(client: Client, settings: Settings, execution_id: str) -> tuple[bool, int | None, int]:
    """Whether the execution still waits at its token budget, its budget and the tokens used."""
    try:
        detail = await dag_executions.get_execution(client, settings, execution_id)
    except DomainError:
        return False, None, 0
    waiting = detail.waiting_reason is not None and detail.max_tokens_per_run is not None
    return waiting, detail.max_tokens_per_run, detail.usage.total_tokens
