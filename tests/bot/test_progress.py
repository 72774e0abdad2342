"""One live progress message per run: edits at most once per chat per interval, the final state
always edited in, and after a bot restart progress is neither lost nor repeated; a running agent
node's text shows in it as it is written, within Telegram's limit."""

import copy
import itertools
import re
from datetime import UTC, datetime
from typing import Any, cast

import httpx
from sqlmodel import select
from temporalio.client import Client

from bot.progress import ProgressFollower, RunTracker
from bot.texts import TELEGRAM_LIMIT, progress
from contracts.dag import DagEvent
from core.db import session_scope
from core.models import TelegramProgress
from core.settings import Settings
from services.live_output import LiveDelta
from tests.api.goal_helpers import make_goal, make_goal_agent
from tests.bot.conftest import ALICE, BOB, INTERVAL_S, Chat, buttons, done_count, running_bot
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import Call, FakeTelegram
from tests.helpers import make_agent, make_provider

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


WORDS = 60
PACE_S = 0.08
"""The writer's pace: its answer takes ~5 s, several edit intervals."""
QUOTED = re.compile(r"<blockquote>(.*)</blockquote>", re.S)


async def test_the_message_shows_the_running_nodes_text_as_it_is_written_then_the_normal_line(
    api: httpx.AsyncClient,
    client: Client,
    bot_settings: Settings,
    telegram: FakeTelegram,
    fake_llm: FakeOpenAI,
) -> None:
    writer = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    answer = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[writer["model"]] = lambda _body: {"role": "assistant", "content": answer}
    fake_llm.paces[writer["model"]] = PACE_S
    plan = {"name": "talk", "nodes": [{"id": "say", "agent": writer["name"], "prompt": "Talk."}]}
    goal = await make_goal(api, (await make_goal_agent(api, fake_llm, plan=plan))["name"])
    alice = Chat(telegram, ALICE)

    async with running_bot(bot_settings, client) as app:
        await telegram.wait_call("deleteWebhook")
        since = await alice.say(f"/run {goal['id']}")
        message_id = (await alice.reply(since)).result["message_id"]
        await alice.reply(since, method="sendDocument")
        await app.progress.idle()

    edits = _edits(telegram, ALICE, message_id)
    shown = [(i, found.group(1)) for i, c in enumerate(edits) if (found := QUOTED.search(c.params["text"]))]
    # Growing text, each edit a longer start of the answer, while the node still runs (0/1 done).
    assert len(shown) >= 2, [c.params["text"] for c in edits]
    assert all(answer.startswith(text) for _, text in shown)
    assert all(len(a) < len(b) for (_, a), (_, b) in itertools.pairwise(shown))
    assert all(done_count(edits[i].params["text"]) == (0, 1) for i, _ in shown)
    assert all("✍️ <b>say</b>" in edits[i].params["text"] for i, _ in shown)
    succeeded = next(i for i, c in enumerate(edits) if done_count(c.params["text"]) == (1, 1))
    assert shown[-1][0] < succeeded
    # Once the node succeeded the text is gone; the final message is the normal one.
    assert all(QUOTED.search(c.params["text"]) is None for c in edits[succeeded:])
    final = telegram.messages[(ALICE, message_id)]["text"]
    assert "succeeded" in final and done_count(final) == (1, 1) and "word" not in final, final
    _assert_spaced(edits)


def test_a_long_text_shows_its_escaped_tail_within_telegrams_limit() -> None:
    written = "<b>&</b> 🙂 " * 2000 + "the end"
    text = progress(
        title="t", run_id="goal-1-ab", phase="running", done=0, total=1, running=["n"], writing=("n", written)
    )
    assert len(text.encode("utf-16-le")) // 2 <= TELEGRAM_LIMIT
    quoted = QUOTED.search(text)
    assert quoted is not None and quoted.group(1).endswith("&lt;/b&gt; 🙂 the end")
    assert quoted.group(1).startswith("…") and "<b>&" not in quoted.group(1)
    assert len(quoted.group(1)) > 3000  # the room the message has left, not a few words
    assert text.endswith("<code>goal-1-ab</code>")
    finished = progress(
        title="t",
        run_id="goal-1-ab",
        phase="running",
        done=1,
        total=1,
        status="succeeded",
        writing=("n", "x"),
    )
    assert QUOTED.search(finished) is None


def _tracker() -> RunTracker:
    row = TelegramProgress(
        run_id="goal-1-ab",
        title="t",
        chat_id=1,
        message_id=1,
        started_by=1,
        rendered="",
        phase="running",
        total=1,
    )
    return RunTracker(cast(ProgressFollower, None), row)


def test_a_new_attempt_starts_the_text_again_and_the_nodes_end_removes_it() -> None:
    tracker = _tracker()
    at = datetime.now(UTC)
    tracker._apply((0, DagEvent(kind="node_started", node_id="n", at=at)))
    for attempt, offset, text in ((1, 0, "first "), (1, 6, "try"), (2, 0, "second")):
        tracker._apply(LiveDelta(node_id="n", attempt=attempt, offset=offset, text=text))
        if attempt == 1:
            assert "first try".startswith(_quoted(tracker._render()))
    assert _quoted(tracker._render()) == "second"
    tracker._apply(LiveDelta(node_id="n", attempt=2, offset=0, text="again"))  # the next try of the node
    assert _quoted(tracker._render()) == "again"
    tracker._apply((1, DagEvent(kind="node_succeeded", node_id="n", at=at)))
    rendered = tracker._render()
    assert QUOTED.search(rendered) is None and done_count(rendered) == (1, 1)


def _quoted(text: str) -> str:
    found = QUOTED.search(text)
    assert found is not None, text
    return found.group(1)
