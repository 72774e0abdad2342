"""Side effects happen once per activity: a retried `remember` returns the memory it stored, and a
non-idempotent `http_request` is never sent twice unless it provably never left or says it is
idempotent. A retry is the same activity run again with the same activity info."""

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
from sqlmodel import col, func, select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.tools.registry import TOOLS
from contracts.tools import HTTP_OUTCOME_UNKNOWN, HTTP_REQUEST_FAILED, ToolResult
from core.db import session_scope
from core.models import Memory
from core.settings import Settings, get_settings
from tests.activities.slow_http import Hits, serve
from tests.conftest import unique
from tests.stack import free_port


def attempt_env() -> ActivityEnvironment:
    """One activity (workflow, run and activity id) whose attempts the test runs one by one."""
    environment = ActivityEnvironment()
    environment.info = dataclasses.replace(
        environment.info, workflow_id=unique("once"), workflow_run_id=unique("run"), activity_id="node-1"
    )
    return environment


async def run(environment: ActivityEnvironment, tool: str, args: dict[str, Any]) -> ToolResult:
    result = await environment.run(TOOLS[tool].activity, args)
    assert isinstance(result, ToolResult)
    return result


async def failure(environment: ActivityEnvironment, tool: str, args: dict[str, Any]) -> ApplicationError:
    with pytest.raises(ApplicationError) as caught:
        await run(environment, tool, args)
    return caught.value


@pytest.fixture
def hits(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[Hits]:
    monkeypatch.setattr(get_settings(), "http_allowlist", ["127.0.0.1"])
    with serve() as server:
        yield server


async def memories_with(settings: Settings, content: str) -> int:
    async with session_scope(settings) as session:
        stmt = select(func.count()).select_from(Memory).where(col(Memory.content) == content)
        return int((await session.exec(stmt)).one())


async def test_retried_remember_stores_one_memory_and_returns_its_id(settings: Settings) -> None:
    environment = attempt_env()
    content = unique("fact")
    args = {"agent": "keeper", "content": content, "tags": ["a"]}
    first = await run(environment, "remember", args)
    second = await run(environment, "remember", args)
    assert second.output == first.output
    assert await memories_with(settings, content) == 1


async def test_remember_in_another_activity_stores_another_memory(settings: Settings) -> None:
    content = unique("fact")
    args = {"agent": "keeper", "content": content}
    first = await run(attempt_env(), "remember", args)
    second = await run(attempt_env(), "remember", args)
    assert first.output["id"] != second.output["id"]
    assert await memories_with(settings, content) == 2


async def test_post_whose_answer_timed_out_is_not_sent_again(hits: Hits) -> None:
    environment = attempt_env()
    args = {
        "method": "POST",
        "url": hits.url("timeout", delay=3, first=True),
        "body": {"a": 1},
        "timeout_s": 0.5,
    }
    error = await failure(environment, "http_request", args)
    assert (error.type, error.non_retryable) == (HTTP_OUTCOME_UNKNOWN, True)
    # Even if the activity is retried (a lost worker), the request is not sent a second time.
    again = await failure(environment, "http_request", args)
    assert (again.type, again.non_retryable) == (HTTP_OUTCOME_UNKNOWN, True)
    assert hits.counts["timeout"] == 1


async def test_answered_post_retried_returns_the_recorded_answer_without_sending(hits: Hits) -> None:
    environment = attempt_env()
    args = {"method": "POST", "url": hits.url("answered"), "body": "x"}
    first = await run(environment, "http_request", args)
    second = await run(environment, "http_request", args)
    assert second.output == first.output
    assert first.output["json"] == {"key": "answered", "n": 1}
    assert hits.counts["answered"] == 1


async def test_post_that_could_not_connect_is_retried_and_sent(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "http_allowlist", ["127.0.0.1"])
    environment = attempt_env()
    port = free_port()
    args = {"method": "POST", "url": f"http://127.0.0.1:{port}/hit?key=refused&delay=0", "body": {}}
    error = await failure(environment, "http_request", args)
    assert (error.type, error.non_retryable) == (HTTP_REQUEST_FAILED, False)
    with serve(port):
        result = await run(environment, "http_request", args)
    assert result.output["json"] == {"key": "refused", "n": 1}


async def test_idempotent_post_is_sent_again_after_a_timeout(hits: Hits) -> None:
    environment = attempt_env()
    url = hits.url("idem", delay=3, first=True)
    args = {"method": "POST", "url": url, "body": {}, "timeout_s": 0.5, "idempotent": True}
    error = await failure(environment, "http_request", args)
    assert (error.type, error.non_retryable) == (HTTP_REQUEST_FAILED, False)
    result = await run(environment, "http_request", args)
    assert result.output["json"] == {"key": "idem", "n": 2}


async def test_get_is_sent_again_after_a_timeout(hits: Hits) -> None:
    environment = attempt_env()
    args = {"url": hits.url("get", delay=3, first=True), "timeout_s": 0.5}
    error = await failure(environment, "http_request", args)
    assert (error.type, error.non_retryable) == (HTTP_REQUEST_FAILED, False)
    result = await run(environment, "http_request", args)
    assert result.output["json"] == {"key": "get", "n": 2}


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
async def test_other_writes_time_out_as_outcome_unknown(hits: Hits, method: str) -> None:
    key = unique(method)
    error = await failure(
        attempt_env(), "http_request", {"method": method, "url": hits.url(key, delay=3), "timeout_s": 0.5}
    )
    assert (error.type, error.non_retryable) == (HTTP_OUTCOME_UNKNOWN, True)
