"""Approve / Reject buttons resume a waiting DAG through the same decision call as REST, once."""

import asyncio
import copy
import re
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from bot.app import BotApp
from core.db import session_scope
from core.settings import Settings
from services.telegram_approvals import open_by_message, parse_answer, running_query
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.api.goal_helpers import make_goal, make_goal_agent
from tests.api.mcp_helpers import agent_script, notes_server
from tests.bot.conftest import ALICE, BOB, Chat, buttons
from tests.fakes.mcp_server import NotesServer
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import make_agent, make_provider

GATED: dict[str, Any] = {
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "20 + 22"}},
        {
            "id": "publish",
            "tool": "noop",
            "input": {"value": "the answer is {{nodes.calc.output}}"},
            "depends_on": ["calc"],
            "requires_approval": True,
        },
        {"id": "after", "tool": "noop", "input": {"value": 1}, "depends_on": ["publish"]},
    ],
}


@pytest_asyncio.fixture
async def alice(telegram: FakeTelegram, bot: BotApp) -> Chat:
    return Chat(telegram, ALICE, "Alice")


def prompts(telegram: FakeTelegram, chat_id: int, execution_id: str) -> list[dict[str, Any]]:
    return [
        m
        for m in telegram.sent_to(chat_id)
        if "Approval needed" in m.get("text", "") and execution_id in m["text"]
    ]


async def wait_prompt(telegram: FakeTelegram, chat_id: int, execution_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await telegram.wait_for(
        lambda: next(iter(prompts(telegram, chat_id, execution_id)), None), what=f"prompt for {execution_id}"
    )
    return copy.deepcopy(found)  # as sent: later edits change the fake's copy


async def test_a_run_started_in_telegram_asks_its_chat_and_approve_resumes_it(
    api: httpx.AsyncClient, client: Client, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan={"name": "gated", **GATED})
    goal = await make_goal(api, agent["name"])
    since = await alice.say(f"/run {goal['id']}")
    run_id = re.search(r"goal-\d+-\w+", (await alice.reply(since)).params["text"]).group(0)  # type: ignore[union-attr]
    prompt = await telegram.wait_for(
        lambda: next(
            (
                m
                for m in telegram.sent_to(ALICE)
                if "Approval needed" in m.get("text", "") and run_id in m["text"]
            ),
            None,
        ),
        what="approval prompt",
    )
    prompt = copy.deepcopy(prompt)
    execution_id = re.search(r"dag-goal[\w.:-]+", prompt["text"]).group(0)  # type: ignore[union-attr]
    assert "publish" in prompt["text"] and "the answer is 42" in prompt["text"], prompt["text"]
    assert prompts(telegram, BOB, execution_id) == []  # only the chat that started the run
    approve, reject = buttons(prompt)
    assert approve["text"].endswith("Approve") and reject["text"].endswith("Reject")
    assert all(len(b["callback_data"].encode()) <= 64 for b in (approve, reject))

    since = await alice.press(prompt["message_id"], approve["callback_data"])
    assert await alice.answered(since) == "Approved."
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded"
    assert {n["id"]: n["status"] for n in body["nodes"]}["publish"] == "succeeded"
    decided = telegram.messages[(ALICE, prompt["message_id"])]
    assert "Approved by Alice (@alice)" in decided["text"] and "UTC" in decided["text"]
    assert buttons(decided) == []

    since = await alice.press(prompt["message_id"], reject["callback_data"])
    assert await alice.answered(since) == "Already decided."


async def test_reject_fails_the_node_and_a_press_after_it_moved_on_is_already_decided(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat
) -> None:
    dag = await make_dag(api, {**GATED, "on_failure": "fail"})
    execution_id = await start(api, dag["id"])
    # Started through REST: every allowed user is asked.
    prompt = await wait_prompt(telegram, ALICE, execution_id)
    bob_prompt = await wait_prompt(telegram, BOB, execution_id)
    _, reject = buttons(prompt)

    since = await alice.press(prompt["message_id"], reject["callback_data"])
    assert await alice.answered(since) == "Rejected."
    body = await wait_closed(api, execution_id)
    assert body["status"] == "failed"
    assert {n["id"]: n["status"] for n in body["nodes"]}["publish"] == "failed"
    for chat, message in ((ALICE, prompt), (BOB, bob_prompt)):
        shown = telegram.messages[(chat, message["message_id"])]
        assert "Rejected by Alice" in shown["text"] and buttons(shown) == []

    bob = Chat(telegram, BOB, "Bob")
    approve, _ = buttons(bob_prompt)
    since = await bob.press(bob_prompt["message_id"], approve["callback_data"])
    assert await bob.answered(since) == "Already decided."


async def test_a_decision_through_rest_edits_the_prompts(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat
) -> None:
    dag = await make_dag(api, GATED)
    execution_id = await start(api, dag["id"])
    prompt = await wait_prompt(telegram, ALICE, execution_id)
    await wait_node(api, execution_id, "publish", "waiting_approval")
    response = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "publish"})
    assert response.status_code == 200, response.text
    shown = await telegram.wait_for(
        lambda: (
            (m := telegram.messages[(ALICE, prompt["message_id"])]) and "outside Telegram" in m["text"] and m
        ),
        what="prompt edited after a REST decision",
    )
    assert buttons(shown) == []
    approve, _ = buttons(prompt)
    since = await alice.press(prompt["message_id"], approve["callback_data"])
    assert await alice.answered(since) == "Already decided."
    assert (await wait_closed(api, execution_id))["status"] == "succeeded"


def test_the_watcher_looks_only_at_running_dag_executions_of_its_task_queue(bot: BotApp) -> None:
    query = running_query(bot.settings)
    assert "WorkflowType = 'DagWorkflow'" in query and f"TaskQueue = '{bot.settings.task_queue}'" in query


async def test_an_agents_mcp_call_waiting_mid_run_is_shown_and_approved_in_telegram(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI, notes: NotesServer
) -> None:
    name = await notes_server(api, notes)
    tool = f"{name}__delete_note"
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], tools=[tool])
    fake_llm.handlers[agent["model"]] = agent_script(tool, {"index": 0})
    notes.notes[:] = ["stale"]
    before = notes.calls["delete_note"]
    dag = await make_dag(api, {"nodes": [{"id": "tidy", "agent": agent["name"], "prompt": "Tidy up."}]})
    execution_id = await start(api, dag["id"])
    prompt = await wait_prompt(telegram, ALICE, execution_id)
    assert f"tool call {tool}" in prompt["text"] and '"index": 0' in prompt["text"], prompt["text"]
    assert notes.calls["delete_note"] == before
    approve, _ = buttons(prompt)
    since = await alice.press(prompt["message_id"], approve["callback_data"])
    assert await alice.answered(since) == "Approved."
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert notes.calls["delete_note"] == before + 1 and notes.notes == []


async def test_a_tools_question_is_answered_by_replying_to_its_prompt(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, settings: Settings, notes: NotesServer
) -> None:
    name = await notes_server(api, notes)
    dag = await make_dag(api, {"nodes": [{"id": "sign", "tool": f"{name}__sign_guestbook", "input": {}}]})
    execution_id = await start(api, dag["id"])
    prompt = await wait_prompt(telegram, ALICE, execution_id)
    assert "Who is signing the guestbook?" in prompt["text"], prompt["text"]
    assert "name=…" in prompt["text"] and "visits=…" in prompt["text"]

    async def recorded() -> bool:  # the prompt's copies are recorded just after they are sent
        async with session_scope(settings) as session:
            return await open_by_message(session, ALICE, prompt["message_id"]) is not None

    for _ in range(100):
        if await recorded():
            break
        await asyncio.sleep(0.1)
    since = await alice.say("visits=lots", reply_to=prompt["message_id"])
    said = await alice.reply(since, where=lambda c: "Not an answer" in c.params.get("text", ""))
    assert "visits must be an integer" in said.params["text"], said.params["text"]
    since = await alice.say("name=Ada\nvisits=3", reply_to=prompt["message_id"])
    await alice.reply(since, where=lambda c: c.params.get("text") == "Answered.")
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert body["nodes"][0]["output"] == {"result": "signed by Ada (3 visits)"}
    shown = telegram.messages[(ALICE, prompt["message_id"])]
    assert "Answered by Alice" in shown["text"] and buttons(shown) == []


def test_a_reply_is_read_as_the_fields_its_form_asks_for() -> None:
    schema = {
        "properties": {"name": {"type": "string"}, "visits": {"type": "integer"}, "vip": {"type": "boolean"}},
        "required": ["name"],
    }
    assert parse_answer("name = Ada Lovelace\nvisits=3; vip=yes", schema) == {
        "name": "Ada Lovelace",
        "visits": 3,
        "vip": True,
    }
    assert parse_answer('{"name": "Ada", "visits": 2}', schema) == {"name": "Ada", "visits": 2}
    for text, says in (
        ("visits=2", "missing name"),
        ("name=Ada\nage=3", "unknown field 'age'"),
        ("just words", "is not field=value"),
        ("name=Ada\nvip=maybe", "vip must be true or false"),
        ("{not json", "not a JSON object"),
    ):
        with pytest.raises(ValueError, match=says):
            parse_answer(text, schema)
