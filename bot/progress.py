"""One live progress message per run started from Telegram.

The message is edited from the run's DAG execution event stream ("3/7 nodes done", the running
nodes) and its running agent node's text so far (the `node.output_delta` live events merged into
the stream, services/live_output.py), at most once per chat every TELEGRAM_PROGRESS_INTERVAL_S
(Telegram limits edits per chat), and the final state is always edited in however short the run.
Counters, the stream offset they include and the text the message shows are saved together after
each edit (`services.telegram_progress`), so a restarted bot reads on from that offset and edits
only when the text differs: progress is neither lost nor repeated (a node's text is not saved; the
kept live events replay it). At the end come the summary and the report artifact as a document.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest, TelegramRetryAfter
from aiogram.types import BufferedInputFile
from temporalio.client import Client

from bot import texts
from bot.shield import to_the_end
from contracts.dag import NodeStatus
from contracts.runs import RunDetail, RunStatus
from core.db import session_scope
from core.errors import DomainError, NotFound
from core.models import TelegramProgress
from core.settings import Settings
from services import dag_event_stream, dag_executions, live_output, runs, telegram_progress
from services.dag_event_stream import Gap, StreamItem
from services.live_output import LiveDelta
from services.realtime import EventHub
from services.telegram_progress import DONE, REPORTING, TRACKING
from storage import artifacts

log = logging.getLogger("goalflow.bot.progress")

PLAN_POLL_S = 1.0
"""How often a run still planning is asked whether its DAG has started."""
STREAM_POLL = timedelta(seconds=1)
"""Pause between stream polls once caught up: edits are seconds apart anyway."""
RETRY_S = (1.0, 30.0)
"""Backoff (first, cap) before following a run again after a failure (Temporal or Telegram down)."""

_FINISHED = {"node_succeeded", "node_failed", "node_skipped", "node_cancelled"}
_CLOSING = {"execution_succeeded", "execution_failed", "execution_cancelled"}
SUMMARY_SENT = "document"
"""Stage between the summary message and the report document."""
KEPT_TEXT = 2 * texts.TELEGRAM_LIMIT
"""The end of a node's text kept to show (more than one message can hold)."""


class ChatLimiter:
    """At most one edit per chat every `interval` seconds, shared by every run in that chat."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next: dict[int, float] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def slot(self, chat_id: int) -> AsyncIterator["_Slot"]:
        """Wait for the chat's turn; the turn is spent only if the caller marks it `used`."""
        loop = asyncio.get_running_loop()
        async with self._locks.setdefault(chat_id, asyncio.Lock()):
            wait = self._next.get(chat_id, 0.0) - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            slot = _Slot()
            try:
                yield slot
            finally:
                if slot.used:
                    self._next[chat_id] = loop.time() + max(self.interval, slot.retry_after)


@dataclass
class _Slot:
    used: bool = False
    retry_after: float = 0.0


@dataclass
class _End:
    error: BaseException | None = None


@dataclass
class _NodeText:
    """The end of what one try of a node wrote so far; `end` is its length (the next offset)."""

    attempt: int
    text: str = ""
    end: int = 0

    def add(self, delta: LiveDelta) -> "_NodeText":
        """This text with `delta` in it, or a new one when the delta starts another try (a retried
        attempt, the node's next try or a fallback model all start again at offset 0)."""
        if delta.attempt != self.attempt or (delta.offset == 0 and self.end > 0):
            return _NodeText(delta.attempt).add(delta)
        if delta.offset > self.end:  # a piece is no longer kept: say so, and go on
            self.text += " … "
        elif delta.offset < self.end:
            delta = LiveDelta(delta.node_id, delta.attempt, self.end, delta.text[self.end - delta.offset :])
        self.text = (self.text + delta.text)[-KEPT_TEXT:]
        self.end = delta.offset + len(delta.text)
        return self


class RunTracker:
    """Follows one run for its message; `run` returns when the summary went out."""

    def __init__(self, follower: "ProgressFollower", row: TelegramProgress) -> None:
        self.f = follower
        self.row = row
        self.status: str | None = None
        self.detail = ""
        self.writing: dict[str, _NodeText] = {}
        """Each agent node's text so far, the one written to last at the end (shown if running)."""
        self._saved = self._state()

    async def run(self) -> None:
        if self.row.stage == TRACKING:
            await self._track()
        if self.row.stage in (REPORTING, SUMMARY_SENT):
            await self._report()

    # ------------------------------------------------------------------ tracking

    async def _track(self) -> None:
        if self.row.execution_id is None:
            await self._await_plan()
        if self.row.execution_id is not None:
            self.f.on_execution(self.row.execution_id)
            await self._follow_events(self.row.execution_id)
        await self._finish()

    async def _await_plan(self) -> None:
        """Wait until the run started its DAG (or ended without one), showing the phase."""
        while True:
            try:
                detail = await runs.get_run(self.f.temporal, self.f.settings, self.row.run_id)
            except NotFound:
                return
            if detail.dag_workflow_id:
                self.row.execution_id = detail.dag_workflow_id
                self.row.phase = "running"
                await self._flush()
                return
            if detail.status != RunStatus.running:
                return
            phase = detail.phase or "starting"
            if phase != self.row.phase:
                self.row.phase = phase
                await self._flush()
            await asyncio.sleep(PLAN_POLL_S)

    async def _follow_events(self, execution_id: str) -> None:
        queue: asyncio.Queue[StreamItem | LiveDelta | _End] = asyncio.Queue()

        async def read() -> None:
            try:
                stream = dag_event_stream.events(
                    self.f.temporal,
                    self.f.settings,
                    execution_id,
                    after=self.row.offset,
                    poll_cooldown=STREAM_POLL,
                )
                async for item in live_output.merged(stream, self.f.hub, execution_id):
                    await queue.put(item)
            except Exception as exc:
                await queue.put(_End(exc))
            else:
                await queue.put(_End())

        reader = asyncio.create_task(read())
        try:
            if not self.row.total:
                await self._resync(execution_id)
            while True:
                item = await queue.get()
                end = item if isinstance(item, _End) else None
                if not isinstance(item, _End):
                    self._apply(item)
                    # Wait for the chat's turn, then take in everything that arrived meanwhile:
                    # one edit carries all of it.
                    async with self.f.limiter.slot(self.row.chat_id) as slot:
                        while end is None and not queue.empty():
                            more = queue.get_nowait()
                            if isinstance(more, _End):
                                end = more
                            else:
                                self._apply(more)
                        if self._needs_resync:
                            await self._resync(execution_id)
                        slot.used, slot.retry_after = await self._edit_and_save()
                if end is not None:
                    if end.error is not None:
                        raise end.error
                    return
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    _needs_resync = False

    def _apply(self, item: StreamItem | LiveDelta) -> None:
        """Count one event the way DagWorkflow counts finished nodes; keep a node's text."""
        row = self.row
        if isinstance(item, LiveDelta):
            if item.node_id is not None:
                node_text = self.writing.pop(item.node_id, None) or _NodeText(item.attempt)
                self.writing[item.node_id] = node_text.add(item)  # the newest last
            return
        if isinstance(item, Gap):
            row.offset = item.last
            self._needs_resync = True
            return
        offset, event = item
        row.offset = offset
        node = event.node_id
        running, waiting = list(row.running), list(row.waiting)
        if event.kind == "node_started" and node is not None:
            running = [*[n for n in running if n != node], node]
        elif event.kind in _FINISHED and node is not None:
            self.writing.pop(node, None)  # its text is written; the count says the rest
            row.done += 1
            row.failed += event.kind == "node_failed"
            running = [n for n in running if n != node]
        elif event.kind == "node_waiting_approval" and node is not None and node not in waiting:
            waiting.append(node)
        elif event.kind in ("node_approved", "node_rejected", "node_approval_timed_out"):
            waiting = [n for n in waiting if n != node]
        elif event.kind == "execution_resumed":
            # The failed node is open again (retried, patched, or skipped: then node_skipped follows).
            row.done = max(0, row.done - 1)
            row.failed = max(0, row.failed - 1)
        elif event.kind in _CLOSING:
            running, waiting = [], []
        row.running, row.waiting = running, waiting

    async def _resync(self, execution_id: str) -> None:
        """Counters from the execution's own status query (its first read, or after a gap)."""
        self._needs_resync = False
        try:
            detail = await dag_executions.get_execution(self.f.temporal, self.f.settings, execution_id)
        except DomainError:
            return
        if not detail.nodes:
            return
        row = self.row
        row.total = detail.total
        if row.offset >= 0:  # counted from events so far, unless a gap made them wrong
            row.done = detail.done
            row.failed = sum(1 for n in detail.nodes if n.status == NodeStatus.failed)
            row.running = [n.id for n in detail.nodes if n.status == NodeStatus.running]
            row.waiting = [n.id for n in detail.nodes if n.status == NodeStatus.waiting_approval]

    async def _finish(self) -> None:
        """The run is over once its workflow closed: edit the final state in."""
        if self.row.execution_id is not None and self.row.phase != "summarising":
            detail = await self._run_detail()
            if detail is not None and detail.status == RunStatus.running:
                self.row.phase = "summarising"
                await self._flush()
        await telegram_progress.wait_closed(self.f.temporal, self.row.run_id)
        detail = await self._run_detail()
        self.row.phase = "finished"
        if detail is None:
            self.status, self.detail = "gone", "the run no longer exists"
        else:
            self.status = detail.status.value
            parts = []
            if detail.usage.total_tokens:
                parts.append(texts.tokens(detail.usage.total_tokens))
            if detail.duration_ms is not None:
                parts.append(texts.duration(detail.duration_ms / 1000))
            if detail.failure is not None:
                parts.append(detail.failure.message)
            self.detail = " · ".join(parts)
        await self._flush(stage=REPORTING)

    async def _run_detail(self) -> RunDetail | None:
        try:
            return await runs.get_run(self.f.temporal, self.f.settings, self.row.run_id)
        except NotFound:
            return None

    # ------------------------------------------------------------------ edits

    async def _flush(self, **changes: Any) -> None:
        async with self.f.limiter.slot(self.row.chat_id) as slot:
            slot.used, slot.retry_after = await self._edit_and_save(**changes)

    def _render(self) -> str:
        row = self.row
        shown = [node for node in self.writing if node in row.running and row.phase == "running"]
        return texts.progress(
            title=row.title,
            run_id=row.run_id,
            phase=row.phase,
            done=row.done,
            total=row.total,
            failed=row.failed,
            running=row.running,
            waiting=row.waiting,
            status=self.status,
            detail=self.detail,
            writing=(shown[-1], self.writing[shown[-1]].text) if shown else None,
        )

    async def _edit_and_save(self, **changes: Any) -> tuple[bool, float]:
        """Edit the message if its text changed, then save counters, offset and text together:
        (whether Telegram was called, seconds it asked us to wait). Runs to its end even when the
        bot is stopping meanwhile: an edit that went out but was not recorded would be sent again
        after a restart."""
        return await to_the_end(self._edit_then_save(**changes))

    async def _edit_then_save(self, **changes: Any) -> tuple[bool, float]:
        text = self._render()
        called, retry_after = False, 0.0
        if text == self.row.rendered and not changes and self._state() == self._saved:
            return called, retry_after  # nothing new to show or to save (a node's text, unshown)
        if text != self.row.rendered:
            called = True
            while True:
                try:
                    await self.f.bot.edit_message_text(
                        text=text, chat_id=self.row.chat_id, message_id=self.row.message_id
                    )
                    break
                except TelegramRetryAfter as exc:  # over Telegram's limit after all: wait, retry
                    retry_after = float(exc.retry_after)
                    await asyncio.sleep(retry_after)
                except TelegramBadRequest as exc:
                    # "not modified" means it already shows this; a deleted message cannot be
                    # edited any more. Either way the run goes on being followed.
                    log.info("progress message %s not edited: %s", self.row.message_id, exc.message)
                    break
        row = self.row
        self.row.rendered = text
        for key, value in changes.items():
            setattr(row, key, value)
        async with session_scope(self.f.settings) as session:
            await telegram_progress.save(
                session,
                row.id or 0,
                execution_id=row.execution_id,
                offset=row.offset,
                done=row.done,
                total=row.total,
                failed=row.failed,
                running=row.running,
                waiting=row.waiting,
                phase=row.phase,
                rendered=text,
                stage=row.stage,
            )
        self._saved = self._state()
        return called, retry_after

    def _state(self) -> tuple[Any, ...]:
        """What `_edit_then_save` saves of the row besides its text."""
        row = self.row
        return (
            row.execution_id,
            row.offset,
            row.done,
            row.total,
            row.failed,
            tuple(row.running),
            tuple(row.waiting),
            row.phase,
            row.stage,
        )

    # ------------------------------------------------------------------ the end

    async def _report(self) -> None:
        """The summary and the report document, once each (the stage is saved after each)."""
        detail = await self._run_detail()
        result = detail.result if detail is not None else None
        if result is not None and self.row.stage == REPORTING:
            await to_the_end(self._send_summary(result.summary))
        report = (
            next((s.artifact for s in result.steps if s.kind == "summary" and s.artifact), None)
            if result
            else None
        )
        if report is not None:
            try:
                async with session_scope(self.f.settings) as session:
                    _, data = await artifacts.read_artifact(session, self.f.settings, report)
            except DomainError as exc:
                log.warning("report %s of %s not sent: %s", report, self.row.run_id, exc)
            else:
                caption = texts.esc(f"Report of {self.row.run_id}")
                await to_the_end(self._send_report(BufferedInputFile(data, report), caption))
                return
        await self._set_stage(DONE)

    async def _send_summary(self, summary: str) -> None:
        text = texts.summary(summary)
        if len(text) <= texts.MAX_MESSAGE:
            await self.f.bot.send_message(self.row.chat_id, text)
        else:
            document = BufferedInputFile(summary.encode(), "summary.txt")
            await self.f.bot.send_document(self.row.chat_id, document, caption="📝 Summary")
        await self._set_stage(SUMMARY_SENT)

    async def _send_report(self, document: BufferedInputFile, caption: str) -> None:
        await self.f.bot.send_document(self.row.chat_id, document, caption=caption)
        await self._set_stage(DONE)

    async def _set_stage(self, stage: str) -> None:
        self.row.stage = stage
        async with session_scope(self.f.settings) as session:
            await telegram_progress.save(session, self.row.id or 0, stage=stage)


class ProgressFollower:
    """Every progress message of this bot: starts them, and follows each run to its end, also
    after a restart (every unfinished one is picked up again from its saved offset)."""

    def __init__(
        self,
        bot: Bot,
        settings: Settings,
        temporal: Client,
        *,
        on_execution: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.bot = bot
        self.settings = settings
        self.temporal = temporal
        self.limiter = ChatLimiter(settings.telegram_progress_interval_s)
        self.hub = EventHub(settings)
        """This bot's feed of live events (the running nodes' text), started on first use."""
        self.on_execution = on_execution
        self._tasks: dict[int, asyncio.Task[None]] = {}

    async def start(self, *, chat_id: int, user_id: int, run_id: str, title: str) -> None:
        """Post the run's message and follow the run (posting and recording it go together)."""
        self._spawn(
            await to_the_end(self._post(chat_id=chat_id, user_id=user_id, run_id=run_id, title=title))
        )

    async def _post(self, *, chat_id: int, user_id: int, run_id: str, title: str) -> TelegramProgress:
        text = texts.progress(title=title, run_id=run_id, phase="starting", done=0, total=0)
        message = await self.bot.send_message(chat_id, text)
        async with session_scope(self.settings) as session:
            row = await telegram_progress.create(
                session,
                run_id=run_id,
                title=title,
                chat_id=chat_id,
                message_id=message.message_id,
                started_by=user_id,
                rendered=text,
            )
        return row

    async def resume_all(self) -> None:
        """Follow again every run whose message is not finished (after a restart)."""
        async with session_scope(self.settings) as session:
            rows = await telegram_progress.unfinished(session)
        for row in rows:
            self._spawn(row)

    def _spawn(self, row: TelegramProgress) -> None:
        assert row.id is not None
        if row.id in self._tasks and not self._tasks[row.id].done():
            return
        self._tasks[row.id] = asyncio.create_task(self._follow(row.id), name=f"progress-{row.id}")

    async def _follow(self, progress_id: int) -> None:
        delay = RETRY_S[0]
        while True:
            async with session_scope(self.settings) as session:
                row = await telegram_progress.get(session, progress_id)
            if row is None or row.stage == DONE:
                return
            try:
                await RunTracker(self, row).run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception(
                    "following %s for chat %s failed; again in %.0f s", row.run_id, row.chat_id, delay
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_S[1])

    async def stop(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)
        self._tasks.clear()
        await self.hub.close()

    async def idle(self) -> None:
        """Wait until every followed run is reported (tests)."""
        while any(not t.done() for t in self._tasks.values()):
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)
