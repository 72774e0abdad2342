"""Raise budget ×2 / Stop buttons for an execution paused at its token budget (`on_budget: "ask"`):
the same calls as REST's budget raise and cancel, claimed once like an approval."""  # noqa: RUF002

import copy
from typing import Any

import httpx
import pytest_asyncio

from bot.app import BotApp
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_for
from tests.bot.conftest import ALICE, BOB, Chat, buttons
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.telegram_server import FakeTelegram
from tests.helpers import make_agent, make_provider


@pytest_asyncio.fixture
async def alice(telegram: FakeTelegram, bot: BotApp) -> Chat:
    return Chat(telegram, ALICE, "Alice")


async def paused_execution(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> tuple[str, str]:
    """Three agent nodes of 18 tokens each against a budget of 30: paused before the third."""
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    name = agent["name"]
    dag = await make_dag(
        api,
        {
            "max_tokens_per_run": 30,
            "on_budget": "ask",
            "nodes": [
                {"id": "a", "agent": name, "prompt": "one"},
                {"id": "b", "agent": name, "prompt": "two", "depends_on": ["a"]},
                {"id": "c", "agent": name, "prompt": "three", "depends_on": ["b"]},
            ],
        },
    )
    execution_id = await start(api, dag["id"])
    assert (await wait_for(api, execution_id, {"suspended", "succeeded", "failed"}))["status"] == "suspended"
    return execution_id, agent["model"]


async def budget_prompt(telegram: FakeTelegram, chat_id: int, execution_id: str) -> dict[str, Any]:
    found: dict[str, Any] = await telegram.wait_for(
        lambda: next(
            (
                m
                for m in telegram.sent_to(chat_id)
                if "Token budget reached" in m.get("text", "") and execution_id in m["text"]
            ),
            None,
        ),
        what=f"budget prompt for {execution_id}",
    )
    return copy.deepcopy(found)  # as sent: later edits change the fake's copy


async def test_raise_budget_button_doubles_the_budget_and_the_run_succeeds(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    execution_id, model = await paused_execution(api, fake_llm)
    prompt = await budget_prompt(telegram, ALICE, execution_id)
    bob_prompt = await budget_prompt(telegram, BOB, execution_id)  # started through REST: everyone
    assert "used 36 of 30 tokens" in prompt["text"]
    more, stop = buttons(prompt)
    assert more["text"].endswith("Raise budget ×2") and stop["text"].endswith("Stop")  # noqa: RUF001
    assert all(len(b["callback_data"].encode()) <= 64 for b in (more, stop))

    since = await alice.press(prompt["message_id"], more["callback_data"])
    assert await alice.answered(since) == "Budget raised to 60 tokens."
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert body["max_tokens_per_run"] == 60 and len(fake_llm.calls(model)) == 3
    for chat, message in ((ALICE, prompt), (BOB, bob_prompt)):
        shown = telegram.messages[(chat, message["message_id"])]
        assert "Budget raised by Alice (@alice), to 60 tokens" in shown["text"], shown["text"]
        assert buttons(shown) == []

    bob = Chat(telegram, BOB, "Bob")
    _, bob_stop = buttons(bob_prompt)
    since = await bob.press(bob_prompt["message_id"], bob_stop["callback_data"])
    assert await bob.answered(since) == "Already decided."


async def test_stop_button_cancels_the_paused_run(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    execution_id, model = await paused_execution(api, fake_llm)
    prompt = await budget_prompt(telegram, ALICE, execution_id)
    _, stop = buttons(prompt)
    since = await alice.press(prompt["message_id"], stop["callback_data"])
    assert await alice.answered(since) == "Stopping the run."
    body = await wait_closed(api, execution_id)
    assert body["status"] == "cancelled", body
    assert {n["id"]: n["status"] for n in body["nodes"]}["c"] == "cancelled"
    assert len(fake_llm.calls(model)) == 2
    shown = telegram.messages[(ALICE, prompt["message_id"])]
    assert "Stopped by Alice" in shown["text"] and buttons(shown) == []


async def test_a_raise_through_rest_edits_the_budget_prompt(
    api: httpx.AsyncClient, telegram: FakeTelegram, alice: Chat, fake_llm: FakeOpenAI
) -> None:
    execution_id, _ = await paused_execution(api, fake_llm)
    prompt = await budget_prompt(telegram, ALICE, execution_id)
    response = await api.post(
        f"/api/v1/dag-executions/{execution_id}/budget", json={"max_tokens_per_run": 500}
    )
    assert response.status_code == 200, response.text
    shown = await telegram.wait_for(
        lambda: (
            (m := telegram.messages[(ALICE, prompt["message_id"])]) and "outside Telegram" in m["text"] and m
        ),
        what="budget prompt edited after a REST raise",
    )
    assert buttons(shown) == []
    more, _ = buttons(prompt)
    since = await alice.press(prompt["message_id"], more["callback_data"])
    assert await alice.answered(since) == "Already decided."
    assert (await wait_closed(api, execution_id))["status"] == "succeeded"
