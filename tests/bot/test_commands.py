"""Every command, through aiogram's real session against the fake Bot API server."""

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest_asyncio
from temporalio.client import Client

from bot.app import BotApp
from bot.texts import COMMANDS
from tests.api.goal_helpers import (
    make_goal,
    make_goal_agent,
    planner_then_echo,
    use_fake_summarizer,
    wait_closed,
)
from tests.bot.conftest import ALICE, Chat, buttons, done_count
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import make_agent, make_provider

TWO_STEPS: dict[str, Any] = {
    "name": "two-steps",
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "6 * 7"}},
        {"id": "echo", "tool": "noop", "input": {"value": "{{nodes.calc.output}}"}, "depends_on": ["calc"]},
    ],
}


@pytest_asyncio.fixture
async def fake_planner(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> AsyncIterator[dict[str, Any]]:
    """`planner` (what /goal plans with) answering on the fake model for one test, then the version
    that was active before is active again (runs pin their version, so this is safe)."""
    before = await api.get("/api/v1/agents/resolve/planner")
    await use_fake_summarizer(api, fake_llm)
    provider = await make_provider(api, fake_llm)
    body = {
        "name": "planner",
        "provider_id": provider["id"],
        "model": unique("fake-planner"),
        "activate": True,
    }
    created = await api.post("/api/v1/agents", json=body)
    assert created.status_code == 201, created.text
    fake_llm.handlers[body["model"]] = planner_then_echo(TWO_STEPS)
    yield created.json()
    if before.status_code == 200:
        await api.post(f"/api/v1/agents/{before.json()['id']}/activate")


@pytest_asyncio.fixture
async def alice(telegram: FakeTelegram, bot: BotApp) -> Chat:
    return Chat(telegram, ALICE, "Alice")


async def test_commands_are_set_for_the_menu_and_start_and_help_answer(
    telegram: FakeTelegram, alice: Chat
) -> None:
    commands = telegram.of("setMyCommands")[-1].params["commands"]
    assert [c["command"] for c in commands] == [name for name, _ in COMMANDS]
    assert {
        "goal",
        "goals",
        "run",
        "runs",
        "status",
        "pause",
        "resume",
        "agents",
        "ask",
        "tasks",
        "done",
    } <= {c["command"] for c in commands}
    assert telegram.of("deleteWebhook"), "polling mode clears any webhook"

    since = await alice.say("/start")
    assert "goalflow" in (await alice.reply(since)).params["text"]
    since = await alice.say("/help")
    text = (await alice.reply(since)).params["text"]
    for name, _ in COMMANDS:
        assert f"/{name}" in text


async def test_goal_creates_and_runs_with_one_live_message_then_summary_and_report(
    api: httpx.AsyncClient, client: Client, telegram: FakeTelegram, alice: Chat, fake_planner: dict[str, Any]
) -> None:
    since = await alice.say("/goal Multiply six by seven\nand tell me the answer")
    first = await alice.reply(since)
    assert "Goal #" in first.params["text"] and "Multiply six by seven" in first.params["text"]
    message_id = first.result["message_id"]
    report = await alice.reply(since, method="sendDocument")
    assert report.params["caption"].startswith("Report of goal-")
    [(name, data)] = report.files.values()
    assert name.endswith(".md"), name
    assert b"report:" in data

    run_id = report.params["caption"].removeprefix("Report of ")
    goal_id = int(run_id.split("-")[1])
    goal = (await api.get(f"/api/v1/goals/{goal_id}")).json()
    assert goal["title"] == "Multiply six by seven" and goal["agent_name"] == "planner"
    assert "and tell me the answer" in goal["objective"]
    final = telegram.messages[(ALICE, message_id)]["text"]
    assert "succeeded" in final and done_count(final) == (2, 2), final
    summaries = [c for c in alice.replies(since) if "Summary" in c.params["text"]]
    assert len(summaries) == 1 and "report:" in summaries[0].params["text"]
    # One message for the run: the progress one; everything else is edits of it.
    progress_posts = [c for c in alice.replies(since) if run_id in c.params["text"]]
    assert len(progress_posts) == 1


async def test_run_status_runs_pause_and_resume(
    api: httpx.AsyncClient, client: Client, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=TWO_STEPS)
    goal = await make_goal(api, agent["name"], schedule="0 9 * * MON")

    since = await alice.say(f"/run {goal['id']}")
    document = await alice.reply(since, method="sendDocument")
    run_id = document.params["caption"].removeprefix("Report of ")
    assert run_id.startswith(f"goal-{goal['id']}-")
    await wait_closed(client, run_id)

    since = await alice.say(f"/status {run_id}")
    status = (await alice.reply(since)).params["text"]
    assert "succeeded" in status and "calc" in status and "echo" in status and "2/2 nodes done" in status

    detail = (await api.get(f"/api/v1/runs/{run_id}")).json()
    since = await alice.say(f"/status {detail['dag_workflow_id']}")
    assert "2/2 nodes done" in (await alice.reply(since)).params["text"]

    since = await alice.say("/runs")
    runs = (await alice.reply(since)).params["text"]
    assert "Runs" in runs

    since = await alice.say(f"/pause {goal['id']}")
    assert "paused" in (await alice.reply(since)).params["text"]
    assert (await api.get(f"/api/v1/goals/{goal['id']}")).json()["status"] == "paused"
    schedule = await client.get_schedule_handle(f"goal-{goal['id']}").describe()
    assert schedule.schedule.state.paused
    since = await alice.say(f"/resume {goal['id']}")
    assert "active again" in (await alice.reply(since)).params["text"]
    assert (await api.get(f"/api/v1/goals/{goal['id']}")).json()["status"] == "active"


async def test_goals_list_pages_with_buttons(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    made = [await make_goal(api, agent["name"]) for _ in range(10)]
    since = await alice.say("/goals")
    page = await alice.reply(since)
    assert f"#{made[-1]['id']}" in page.params["text"]  # newest first
    [older] = [b for b in buttons(page.params) if b["text"].startswith("Older")]

    message_id = page.result["message_id"]
    since = await alice.press(message_id, older["callback_data"])
    edited = await alice.reply(since, method="editMessageText")
    assert f"#{made[-1]['id']}" not in edited.params["text"]
    assert f"#{made[0]['id']}" in edited.params["text"] or "Goals 9-" in edited.params["text"]
    assert any(b["text"].startswith("◀") for b in buttons(edited.params))
    await alice.answered(since)


async def test_agents_and_ask_answer_and_a_long_answer_is_a_document(
    api: httpx.AsyncClient, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    agent = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    fake_llm.handlers[agent["model"]] = lambda body: {
        "role": "assistant",
        "content": "pong" if "short" in str(body["messages"][-1]["content"]) else "x" * 5000,
    }
    since = await alice.say("/agents")
    page = (await alice.reply(since)).params["text"]
    assert "Active agents" in page

    since = await alice.say(f"/ask {agent['name']} a short one")
    answer = (await alice.reply(since)).params["text"]
    assert answer.startswith("pong") and agent["name"] in answer

    since = await alice.say(f"/ask {agent['name']} a long one")
    document = await alice.reply(since, method="sendDocument")
    [(_, data)] = document.files.values()
    assert data.startswith(b"x" * 5000)


async def test_errors_are_one_short_sentence_and_bad_arguments_say_how(alice: Chat) -> None:
    since = await alice.say("/run 99999999")
    assert (await alice.reply(since)).params["text"] == "Goal 99999999 not found."
    since = await alice.say("/status goal-99999999-nope")
    assert (await alice.reply(since)).params["text"] == "Run goal-99999999-nope not found."
    since = await alice.say("/ask no-such-agent hello")
    assert (await alice.reply(since)).params["text"] == "Agent 'no-such-agent' has no active version."
    since = await alice.say("/run twelve")
    assert "/run 12" in (await alice.reply(since)).params["text"]
    since = await alice.say("/goal")
    assert "/goal" in (await alice.reply(since)).params["text"]
    for call in alice.replies(0):
        assert "Traceback" not in call.params["text"]
