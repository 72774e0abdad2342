"""One live progress message per run: edits at most once per chat per interval, the final state
always edited in, and after a bot restart progress is neither lost nor repeated."""

import copy
import itertools
import re
from typing import Any

import httpx
from sqlmodel import select
from temporalio.client import Client

from core.db import session_scope
from core.models import TelegramProgress
from core.settings import Settings
from tests.api.goal_helpers import make_goal, make_goal_agent
from tests.bot.conftest import BOB, INTERVAL_S, Chat, buttons, done_count, running_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import Call, FakeTelegram

# Three quick nodes, a gate that waits for a person, three more after it: 7 nodes.
SEVEN: dict[str, Any] = {
    "name": "seven",
    "nodes": [
        *({"id": f"a{i}", "tool": "noop", "input": {"value": i}} for i in range(3)),
        {
            "id": "gate",
            "tool": "noop",
            "input": {"value": "go"},
            "depends_on": ["a0", "a1", "a2"],
            "requires_approval": True,
        },
        *({"id": f"b{i}", "tool": "noop", "input": {"value": i}, "depends_on": ["gate"]} for i in range(3)),
    ],
}


def _edits(telegram: FakeTelegram, chat_id: int, message_id: int) -> list[Call]:
    return [
        c
        for c in telegram.of("editMessageText", chat_id=chat_id, message_id=message_id)
        if "Approval needed" not in c.params["text"]
    ]


def _assert_spaced(edits: list[Call]) -> None:
    """At most one edit per interval (arrival times at the server: each edit starts only after
    the previous one was answered plus the interval)."""
    for before, after in itertools.pairwise(edits):
        assert after.at - before.at >= INTERVAL_S, (before.params["text"], after.params["text"])


async def test_progress_is_rate_limited_and_a_restart_neither_loses_nor_repeats_it(
    api: httpx.AsyncClient,
    client: Client,
    bot_settings: Settings,
    telegram: FakeTelegram,
    fake_llm: FakeOpenAI,
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=SEVEN)
    goal = await make_goal(api, agent["name"])
    bob = Chat(telegram, BOB, "Bob")

    async with running_bot(bot_settings, client):
        await telegram.wait_call("deleteWebhook")
        since = await bob.say(f"/run {goal['id']}")
        first = await bob.reply(since)
        run_id = re.search(r"goal-\d+-\w+", first.params["text"]).group(0)  # type: ignore[union-attr]
        message_id = first.result["message_id"]
        prompt = copy.deepcopy(
            await telegram.wait_for(
                lambda: next(
                    (m for m in telegram.sent_to(BOB) if "Approval needed" in m.get("text", "")), None
                ),
                what="the approval prompt",
            )
        )
        # Before the restart the message reaches the gate: 3 of 7 done, waiting for approval.
        await telegram.wait_for(
            lambda: (
                (text := telegram.messages[(BOB, message_id)]["text"])
                and done_count(text) == (3, 7)
                and "waiting for approval: gate" in text
            ),
            what="3/7 with the gate waiting",
        )
    before_restart = _edits(telegram, BOB, message_id)
    shown_at_restart = telegram.messages[(BOB, message_id)]["text"]
    async with session_scope(bot_settings) as session:
        row = (await session.exec(select(TelegramProgress).where(TelegramProgress.run_id == run_id))).one()
    assert row.rendered == shown_at_restart and row.offset >= 0 and row.stage == "tracking"

    async with running_bot(bot_settings, client) as app:
        await telegram.wait_call("deleteWebhook")
        approve, _ = buttons(prompt)
        since = await bob.press(prompt["message_id"], approve["callback_data"])
        assert await bob.answered(since) == "Approved."
        report = await bob.reply(since, method="sendDocument")
        assert report.params["caption"] == f"Report of {run_id}"
        await app.progress.idle()
    after_restart = _edits(telegram, BOB, message_id)[len(before_restart) :]

    texts = [c.params["text"] for c in _edits(telegram, BOB, message_id)]
    final = telegram.messages[(BOB, message_id)]["text"]
    assert "succeeded" in final and done_count(final) == (7, 7), final
    # Not lost: the count only grows, through the gate, to the end.
    counts = [found[0] for t in texts if (found := done_count(t))]
    assert counts == sorted(counts) and counts[-1] == 7
    # Not repeated: no edit sends what the message already showed, before or after the restart.
    assert all(a != b for a, b in itertools.pairwise(texts))
    assert shown_at_restart not in [c.params["text"] for c in after_restart]
    # One message for the run, posted once (not again after the restart), one summary, one report.
    posts = [
        c
        for c in telegram.of("sendMessage", chat_id=BOB)
        if run_id in c.params["text"] and "Approval needed" not in c.params["text"]
    ]
    assert len(posts) == 1
    assert len([c for c in telegram.of("sendMessage", chat_id=BOB) if "Summary" in c.params["text"]]) == 1
    assert len(telegram.of("sendDocument", chat_id=BOB)) == 1
    # Rate-limited within each life of the bot.
    _assert_spaced(before_restart)
    _assert_spaced(after_restart)
    async with session_scope(bot_settings) as session:
        row = (await session.exec(select(TelegramProgress).where(TelegramProgress.run_id == run_id))).one()
    assert row.stage == "done" and row.rendered == final
