"""The chat intake's agents on the fake LLM server, answering per message text.

`classifier` and `extractor` are global agent names, so the fixture makes a new active version
of each on a provider pointing at the fake (kind `local` by default: the native JSON-schema
path of the embedded model) and answers from `FakeIntake.answers`, keyed by the message text
the prompt carries. Tests in one session run one after another, so they share the two agents.
"""

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from temporalio.client import Client

from contracts.intake import ANSWER_CUE, MessageOutcome
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI, tool_call
from tests.helpers import make_provider

CLASSIFIER_MODEL = "fake-intake-classifier"
EXTRACTOR_MODEL = "fake-intake-extractor"
MESSAGE_MARK = "Message (sent "


def message_text(body: dict[str, Any]) -> str:
    """The chat message inside an intake prompt (the last user message)."""
    prompt = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
    if not isinstance(prompt, str):
        prompt = " ".join(part.get("text", "") for part in prompt if isinstance(part, dict))
    return prompt.rsplit(MESSAGE_MARK, 1)[1].split("): ", 1)[1].removesuffix(ANSWER_CUE)


def answer(body: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """`data` as the model's structured answer: JSON content in native mode, else a tool call."""
    if body.get("response_format", {}).get("type") == "json_schema":
        return {"role": "assistant", "content": json.dumps(data)}
    return tool_call(body["tools"][0]["function"]["name"], data)


@dataclass
class FakeIntake:
    """What the intake agents answer, by message text; unknown texts are `other`, not a task."""

    provider: dict[str, Any]
    classifier: dict[str, Any]
    extractor: dict[str, Any]
    classifications: dict[str, dict[str, Any]] = field(default_factory=dict)
    entities: dict[str, dict[str, Any]] = field(default_factory=dict)

    def script(
        self, text: str, *, classification: dict[str, Any], entities: dict[str, Any] | None = None
    ) -> None:
        self.classifications[text] = classification
        self.entities[text] = {"people": [], "dates": [], "amounts": [], "links": [], **(entities or {})}

    def classify(self, body: dict[str, Any]) -> dict[str, Any]:
        text = message_text(body)
        default = {"title": text[:80], "is_task": False, "category": "other", "urgency": "low"}
        return answer(body, self.classifications.get(text, default))

    def extract(self, body: dict[str, Any]) -> dict[str, Any]:
        text = message_text(body)
        empty: dict[str, Any] = {"people": [], "dates": [], "amounts": [], "links": []}
        return answer(body, self.entities.get(text, empty))


async def activate_intake_agents(
    api: httpx.AsyncClient, provider_id: int, *, classifier_model: str, extractor_model: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """New active versions of `classifier` and `extractor` on a provider."""
    made = []
    for name, model in (("classifier", classifier_model), ("extractor", extractor_model)):
        body = {"name": name, "provider_id": provider_id, "model": model, "activate": True, "temperature": 0}
        response = await api.post("/api/v1/agents", json=body)
        assert response.status_code == 201, response.text
        made.append(response.json())
    return made[0], made[1]


async def setup_intake(api: httpx.AsyncClient, fake_llm: FakeOpenAI) -> FakeIntake:
    """The intake agents on the fake, native JSON-schema mode (a `local` provider); a module's
    `intake` fixture calls this once."""
    provider = await make_provider(api, fake_llm, kind="local", name=unique("intake-local"))
    classifier, extractor = await activate_intake_agents(
        api, provider["id"], classifier_model=CLASSIFIER_MODEL, extractor_model=EXTRACTOR_MODEL
    )
    fake = FakeIntake(provider=provider, classifier=classifier, extractor=extractor)
    fake_llm.handlers[CLASSIFIER_MODEL] = fake.classify
    fake_llm.handlers[EXTRACTOR_MODEL] = fake.extract
    return fake


def classification(title: str, category: str, *, is_task: bool, urgency: str = "normal") -> dict[str, Any]:
    return {"title": title, "is_task": is_task, "category": category, "urgency": urgency}


async def wait_until(condition: Callable[[], bool], timeout_s: float = 60) -> None:
    """Poll a condition about the fake (it has no events to wait on), bounded."""
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 (the fake exposes counters, not events)
            await asyncio.sleep(0.1)


async def outcome(client: Client, message: dict[str, Any], timeout_s: float = 60) -> MessageOutcome:
    """The message's workflow result (it may continue as new while it waits)."""
    handle = client.get_workflow_handle(message["workflow_id"], result_type=MessageOutcome)
    async with asyncio.timeout(timeout_s):
        return await handle.result()


async def poll_message(
    api: httpx.AsyncClient, message_id: int, until: Callable[[dict[str, Any]], bool], timeout_s: float = 60
) -> dict[str, Any]:
    """GET /messages/{id} until `until` holds (a bound, so a broken workflow fails the test)."""
    async with asyncio.timeout(timeout_s):
        while True:
            response = await api.get(f"/api/v1/messages/{message_id}")
            assert response.status_code == 200, response.text
            if until(response.json()):
                return dict(response.json())
            await asyncio.sleep(0.2)
