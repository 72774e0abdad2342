"""Everything the bot says, in one place. Messages use Telegram's HTML mode: every value that
comes from a person or a model is escaped with `esc`."""

import html
from datetime import datetime
from typing import Any

from temporalio.service import RPCError

from core.errors import DomainError, NotFound, Upstream
from services.telegram_access import REFUSAL

__all__ = ["REFUSAL"]

MAX_MESSAGE = 3500
"""Longer answers go out as a document (Telegram's hard limit is 4096 characters)."""
TELEGRAM_LIMIT = 4096
"""Telegram's limit on a message's text, in UTF-16 code units once the HTML is parsed; a message
built within it as HTML (longer than what it parses to) is always accepted."""

COMMANDS: list[tuple[str, str]] = [
    ("start", "What this bot does"),
    ("help", "Every command"),
    ("goal", "Create a goal and run it: /goal <text>"),
    ("goals", "Your goals"),
    ("run", "Run a goal now: /run <goal id>"),
    ("runs", "Recent runs"),
    ("status", "A run's status: /status <run id>"),
    ("pause", "Pause a goal: /pause <goal id>"),
    ("resume", "Resume a goal: /resume <goal id>"),
    ("agents", "Active agents"),
    ("ask", "Test an agent: /ask <agent> <prompt>"),
    ("tasks", "Your tasks"),
    ("done", "Mark a task done: /done <task id>"),
]

ICONS = {
    "running": "⏳",
    "pending": "·",
    "waiting_approval": "✋",
    "suspended": "⏸",
    "succeeded": "✅",
    "failed": "❌",
    "cancelled": "🚫",
    "skipped": "⏭",
    "terminated": "⛔",
    "timed_out": "⌛",
    "active": "▶️",
    "paused": "⏸",
    "completed": "✅",
    "archived": "🗄",
    "todo": "☐",
    "in_progress": "🔄",
    "done": "✅",
}


def esc(value: Any) -> str:
    return html.escape(str(value), quote=False)


def icon(status: Any) -> str:
    return ICONS.get(str(status), "•")


def start() -> str:
    return (
        "👋 <b>goalflow</b> runs your goals as durable AI-agent work.\n\n"
        "Send /goal and what you want done, or just write to me: I file it as a task.\n"
        "/help lists every command."
    )


def help_text() -> str:
    lines = ["<b>Commands</b>"] + [f"/{name} — {esc(text)}" for name, text in COMMANDS]
    lines.append("\nAny other text becomes a message: I say what I understood and which task I made.")
    return "\n".join(lines)


def usage(command: str) -> str:
    """A short sentence for a command given without what it needs."""
    examples = {
        "goal": "Tell me the goal: /goal Summarise the open invoices every Monday",
        "run": "Which goal? /run 12 (see /goals)",
        "status": "Which run? /status goal-12-ab12cd34 (see /runs)",
        "pause": "Which goal? /pause 12 (see /goals)",
        "resume": "Which goal? /resume 12 (see /goals)",
        "ask": "Which agent, and what? /ask summarizer Summarise this: …",
        "done": "Which task? /done 7 (see /tasks)",
    }
    return examples.get(command, "/help lists what I understand.")


def error(exc: BaseException) -> str:
    """One human sentence for a failure; a domain error's own message is safe to show."""
    if isinstance(exc, NotFound):
        return _sentence(str(exc))
    if isinstance(exc, Upstream) and exc.status_code == 503:
        return "goalflow cannot reach its workers right now; try again in a minute."
    if isinstance(exc, DomainError):
        return _sentence(str(exc))
    if isinstance(exc, RPCError):
        return "Temporal is not reachable right now; try again in a minute."
    return "Something went wrong on my side; try again, and if it keeps happening check the logs."


def _sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return "That did not work."
    text = text[0].upper() + text[1:]
    if len(text) > 400:
        text = text[:399] + "…"
    return esc(text if text.endswith((".", "!", "?", ")")) else text + ".")


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


def tokens(n: int) -> str:
    return f"{n:,} tokens"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min"


# ---------------------------------------------------------------------------- progress


def progress(
    *,
    title: str,
    run_id: str,
    phase: str,
    done: int,
    total: int,
    failed: int = 0,
    running: list[str] | None = None,
    waiting: list[str] | None = None,
    status: str | None = None,
    detail: str = "",
    writing: tuple[str, str] | None = None,
) -> str:
    """The live message of one run; `status` set means the run is over. `writing` is a running
    agent node's (id, text so far): its tail is shown, as much as fits in one message."""
    if status is not None:
        head = f"{icon(status)} <b>{esc(title)}</b> — {esc(status)}"
    else:
        head = {
            "starting": "⏳",
            "planning": "🧠",
            "running": "⚙️",
            "summarising": "📝",
        }.get(phase, "⏳") + f" <b>{esc(title)}</b>"
    lines = [head]
    if status is None and phase in ("starting", "planning"):
        lines.append("planning the steps…")
    if total or done:
        count = f"{done}/{total} nodes done" if total else f"{done} nodes done"
        if failed:
            count += f" ({failed} failed)"
        lines.append(count)
    if status is None and running:
        lines.append(
            "running: " + ", ".join(esc(n) for n in running[:5]) + (" …" if len(running) > 5 else "")
        )
    if status is None and waiting:
        lines.append("✋ waiting for approval: " + ", ".join(esc(n) for n in waiting[:5]))
    if status is None and phase == "summarising":
        lines.append("writing the report…")
    if detail:
        lines.append(esc(detail))
    lines.append(f"<code>{esc(run_id)}</code>")
    if status is None and writing is not None and writing[1].strip():
        node, text = writing
        head = f"✍️ <b>{esc(node)}</b>"
        # What the rest of the message leaves, less the section's head, tags and line breaks.
        room = TELEGRAM_LIMIT - _units("\n".join([*lines, head])) - len("\n<blockquote></blockquote>\n")
        if room > len(ELLIPSIS) + 1:
            lines[-1:-1] = [head, f"<blockquote>{_tail(text, room)}</blockquote>"]
    return "\n".join(lines)


ELLIPSIS = "…"


def _units(text: str) -> int:
    """Length as Telegram counts it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _tail(text: str, room: int) -> str:
    """The escaped end of `text` in at most `room` UTF-16 units, "…" first when cut."""
    text = text.strip()
    if _units(esc(text)) <= room:
        return esc(text)
    room -= len(ELLIPSIS)
    kept: list[str] = []
    for char in reversed(text):
        room -= _units(esc(char))
        if room < 0:
            break
        kept.append(esc(char))
    return ELLIPSIS + "".join(reversed(kept)).lstrip()


def summary(text: str) -> str:
    return "📝 <b>Summary</b>\n" + esc(text.strip() or "(the report is empty)")


# ---------------------------------------------------------------------------- approvals


def approval(*, execution_id: str, node_id: str, preview: str, run: str | None) -> str:
    lines = ["✋ <b>Approval needed</b>", f"node <b>{esc(node_id)}</b> in <code>{esc(execution_id)}</code>"]
    if run:
        lines.append(f"run <code>{esc(run)}</code>")
    if preview:
        lines.append(f"<pre>{esc(preview)}</pre>")
    return "\n".join(lines)


def decided(prompt: str, *, decision: str, by: str | None, at: datetime | None) -> str:
    line = {
        "approved": f"✅ Approved by {esc(by or 'someone')} at {when(at)}",
        "rejected": f"❌ Rejected by {esc(by or 'someone')} at {when(at)}",
        "elsewhere": f"☑️ Decided outside Telegram ({esc(by or 'API or CLI')}) at {when(at)}",
        "gone": f"⌛ No longer waiting ({esc(by or 'the run moved on')}) at {when(at)}",
        "answered": f"💬 Answered by {esc(by or 'someone')} at {when(at)}",
    }.get(decision, f"Decided at {when(at)}")
    return f"{prompt}\n\n{line}"


ALREADY_DECIDED = "Already decided."
NOT_A_QUESTION = "That run is not waiting for an answer there (it may have moved on)."
UNKNOWN_PROMPT = "This approval is no longer known."


def person(first_name: str | None, username: str | None) -> str:
    name = first_name or "someone"
    return f"{name} (@{username})" if username else name


# ---------------------------------------------------------------------------- intake


def task_line(task: Any) -> str:
    """One task of a list (`TodoTaskPublic`)."""
    due = f" · due {when(task.due_at)}" if task.due_at else ""
    return f"{icon(task.status)} <b>#{task.id}</b> {esc(task.title)}{due}"


def intake_received(message_id: int) -> str:
    return f"📥 Got it (message #{message_id}); reading it…"


def intake_understood(message: Any) -> str:
    """What the intake made of a message (`MessagePublic` with its task)."""
    head = f"📥 Message #{message.id}"
    c = message.classification
    if c is None:
        if message.status == "failed":
            return f"{head}: I could not read it ({esc(message.status_reason or 'no reason given')})."
        reason = f" ({esc(message.status_reason)})" if message.status_reason else ""
        return f"{head} is saved; it is still waiting to be read{reason}."
    lines = [f"{head}: <b>{esc(c.category)}</b> · urgency {esc(c.urgency)}", f"“{esc(c.title)}”"]
    e = message.entities
    if e is not None:
        if e.people:
            lines.append("👤 " + ", ".join(esc(p) for p in e.people))
        if e.dates:
            lines.append("📅 " + ", ".join(esc(d.at or d.date or d.text) for d in e.dates))
        if e.amounts:
            lines.append("💰 " + ", ".join(esc(f"{a.value:g} {a.currency or ''}".strip()) for a in e.amounts))
        if e.links:
            lines.append("🔗 " + ", ".join(esc(link) for link in e.links))
    if message.task is not None:
        lines.append("✅ Task created: " + task_line(message.task))
    elif not c.is_task:
        lines.append("Not a task: filed as a note.")
    return "\n".join(lines)
