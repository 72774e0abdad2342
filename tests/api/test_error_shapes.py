"""One error shape everywhere, declared for every status a route can answer, and the bugs the
fuzzer (tests/api/test_fuzz.py) found: a PATCH with `null` for a field that cannot be empty was a
500 or a misleading 409."""

from typing import Any

import httpx
import pytest

from api.main import create_app
from core.settings import Settings
from tests.api.goal_helpers import make_goal
from tests.conftest import unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
OWN_BODY = {("get", "/health/ready", "503")}
"""The readiness report names the failing part; it is not an error message."""


def _operations(settings: Settings) -> list[tuple[str, str, dict[str, Any]]]:
    schema = create_app(settings).openapi()
    return [(method, path, op) for path, ops in schema["paths"].items() for method, op in ops.items()]


def test_every_error_status_is_declared_with_the_one_error_shape(settings: Settings) -> None:
    wrong = [
        (method, path, code, response.get("content"))
        for method, path, op in _operations(settings)
        for code, response in op["responses"].items()
        if code >= "400"
        and (method, path, code) not in OWN_BODY
        and response.get("content") != {"application/json": {"schema": ERROR_REF}}
    ]
    assert wrong == []


def test_statuses_follow_from_what_a_route_takes_and_depends_on(settings: Settings) -> None:
    declared = {(m.upper(), p): set(op["responses"]) for m, p, op in _operations(settings)}
    assert {"401", "404", "422"} <= declared[("GET", "/api/v1/agents/{agent_id}")]
    assert {"400", "401", "404", "409", "413", "422"} <= declared[("PATCH", "/api/v1/goals/{goal_id}")]
    assert {"409", "502", "503"} <= declared[("GET", "/api/v1/runs")]  # Temporal behind it
    assert {"401", "404"} <= declared[("GET", "/api/v1/dag-executions/{execution_id}/events")]
    assert {"400", "413", "415"} <= declared[("POST", "/api/v1/task")]
    assert "401" not in declared[("GET", "/api/v1/config")]  # public
    assert "404" not in declared[("GET", "/api/v1/tools")]  # nothing addressed, no database


def test_a_streaming_route_declares_its_errors_as_json(settings: Settings) -> None:
    (events,) = [
        op for m, p, op in _operations(settings) if p == "/api/v1/dag-executions/{execution_id}/events"
    ]
    assert set(events["responses"]["200"]["content"]) == {"text/event-stream"}
    assert events["responses"]["404"]["content"] == {"application/json": {"schema": ERROR_REF}}


async def test_a_body_that_is_not_utf8_is_a_400_in_the_error_shape(api: httpx.AsyncClient) -> None:
    response = await api.post(
        "/api/v1/tasks", content=b"\xff\xfe{", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert isinstance(response.json()["detail"], str)


@pytest.mark.parametrize("field", ["title", "objective", "agent_name", "timezone", "params", "status"])
async def test_a_goal_patch_cannot_null_a_required_field(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, field: str
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    goal = await make_goal(api, agent["name"])
    response = await api.patch(f"/api/v1/goals/{goal['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["detail"] == f"{field} cannot be null"
    after = await api.get(f"/api/v1/goals/{goal['id']}")
    assert after.status_code == 200
    assert after.json()[field] == goal[field]


async def test_a_goal_patch_may_still_remove_its_schedule_and_budget(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    goal = await make_goal(api, agent["name"], max_tokens_per_run=1000)
    response = await api.patch(f"/api/v1/goals/{goal['id']}", json={"max_tokens_per_run": None})
    assert response.status_code == 200, response.text
    assert response.json()["max_tokens_per_run"] is None


@pytest.mark.parametrize("field", ["provider_id", "model", "system_prompt", "tools"])
async def test_an_agent_patch_cannot_null_a_required_field(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, field: str
) -> None:
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    response = await api.patch(f"/api/v1/agents/{agent['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["detail"] == f"{field} cannot be null"
    versions = await api.get("/api/v1/agents", params={"name": agent["name"]})
    assert [a["version"] for a in versions.json()] == [1]  # no new version made


@pytest.mark.parametrize("field", ["name", "kind", "is_active"])
async def test_a_provider_patch_cannot_null_a_required_field(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, field: str
) -> None:
    provider = await make_provider(api, fake_llm, name=unique("prov"))
    response = await api.patch(f"/api/v1/providers/{provider['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["detail"] == f"{field} cannot be null"
    after = await api.get(f"/api/v1/providers/{provider['id']}")
    assert after.json()[field] == provider[field]
