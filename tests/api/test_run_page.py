"""The run page in an ordinary browser: a token holder logs in once (a cookie derived from the API
token, never the token) and gets goals, their runs, an execution's DAG drawn as a graph that follows
the event stream, running agent nodes' text as the model writes it, and approve/reject buttons; the
same data routes as the Telegram Web App, which refuse a browser without that login."""

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import async_playwright

from api.routes.codec import COOKIE as CODEC_COOKIE
from api.routes.webapp import PAGE_COOKIE
from contracts.dag import DagSpec
from core.settings import Settings
from services.telegram_webapp import shape_of
from tests.api.dag_helpers import GATED, make_dag, start
from tests.api.goal_helpers import make_goal, make_goal_agent
from tests.api.sse import serving
from tests.bot.png import colours
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider

CHROMIUM = "/usr/bin/chromium"
HEADER_BLUE = (0x1F, 0x3A, 0x8A)
SUCCEEDED_FILL = (0xDC, 0xFC, 0xE7)
"""The graph's succeeded node boxes."""
WORDS = 80
PACE_S = 0.12
"""The talker writes for about ten seconds: time to log in, open the run and watch it write."""


def _token(settings: Settings) -> str:
    assert settings.api_token is not None
    return settings.api_token.get_secret_value()


def _cookie(response: httpx.Response, name: str) -> str:
    """The Set-Cookie header that sets `name`."""
    found = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    assert len(found) == 1, response.headers.get_list("set-cookie")
    return found[0]


@pytest.fixture
def browser_http(api: httpx.AsyncClient) -> httpx.AsyncClient:
    """The session's API as a browser reaches it: no bearer token, no cookie jar of its own."""
    return httpx.AsyncClient(transport=api._transport, base_url="http://api")


async def _logged_in(http: httpx.AsyncClient, settings: Settings) -> str:
    """Log in with the API token; the page cookie's value."""
    response = await http.post("/webapp/login", data={"token": _token(settings), "next": "browser"})
    assert response.status_code == 303, response.text
    http.cookies.clear()  # each request below says which cookie it carries
    return _cookie(response, PAGE_COOKIE).split(";")[0].split("=", 1)[1]


async def test_without_the_login_the_page_redirects_to_it_and_back_and_data_calls_are_401(
    browser_http: httpx.AsyncClient, settings: Settings
) -> None:
    http = browser_http
    page = await http.get("/webapp/browser?execution=dag-7-abc")
    assert page.status_code == 303
    assert page.headers["location"] == "login?next=" + quote("browser?execution=dag-7-abc", safe="")

    form = await http.get("/webapp/login", params={"next": "browser?execution=dag-7-abc"})
    assert form.status_code == 200 and 'type="password"' in form.text
    assert 'value="browser?execution=dag-7-abc"' in form.text
    assert form.headers["x-frame-options"] == "DENY"

    wrong = await http.post("/webapp/login", data={"token": "not-the-token", "next": "browser"})
    assert wrong.status_code == 401 and "not the API token" in wrong.text
    assert "set-cookie" not in wrong.headers

    token = _token(settings)
    right = await http.post("/webapp/login", data={"token": token, "next": "browser?execution=dag-7-abc"})
    assert right.status_code == 303 and right.headers["location"] == "browser?execution=dag-7-abc"
    http.cookies.clear()
    page_cookie = _cookie(right, PAGE_COOKIE).lower()
    assert "httponly" in page_cookie and "samesite=strict" in page_cookie and "path=/webapp" in page_cookie
    assert "path=/api/v1/codec" in _cookie(right, CODEC_COOKIE).lower()  # the Web UI decodes too
    assert token not in str(right.headers) and token not in right.text
    value = await _logged_in(http, settings)
    assert token not in value

    opened = await http.get(
        "/webapp/browser?execution=dag-7-abc", headers={"Cookie": f"{PAGE_COOKIE}={value}"}
    )
    assert opened.status_code == 200 and "svg" in opened.text
    assert opened.headers["x-frame-options"] == "DENY"
    assert "default-src 'none'" in opened.headers["content-security-policy"]
    assert token not in opened.text

    good = {"Cookie": f"{PAGE_COOKIE}={value}"}
    assert (await http.get("/webapp/api/goals", headers=good)).status_code == 200
    assert (await http.get("/webapp/api/runs", headers=good)).status_code == 200
    bad = {"Cookie": f"{PAGE_COOKIE}={value[:-4]}beef"}
    codec_only = {"Cookie": f"{CODEC_COOKIE}={value}"}  # the codec's cookie is for the codec
    data_calls = [
        ("GET", "/webapp/api/goals"),
        ("GET", "/webapp/api/runs"),
        ("GET", "/webapp/api/runs/goal-1-abc"),
        ("GET", "/webapp/api/executions/dag-1-abc"),
        ("GET", "/webapp/api/executions/dag-1-abc/events"),
        ("POST", "/webapp/api/executions/dag-1-abc/approve"),
        ("POST", "/webapp/api/executions/dag-1-abc/reject"),
    ]
    for headers in (bad, codec_only, {}):
        for method, path in data_calls:
            response = await http.request(method, path, headers=headers, json={"node_id": "gate"})
            assert response.status_code == 401, (method, path, headers, response.text)
            assert "/webapp/login" in response.json()["detail"]
        assert (await http.get("/webapp/browser", headers=headers)).status_code == 303

    out = await http.post("/webapp/logout", headers=good)
    assert out.status_code == 303 and out.headers["location"] == "login"
    assert "max-age=0" in _cookie(out, PAGE_COOKIE).lower()


async def test_bad_input_to_the_page_routes_is_a_precise_4xx(
    browser_http: httpx.AsyncClient, settings: Settings, api: httpx.AsyncClient
) -> None:
    http = browser_http
    for elsewhere in ("https://evil.example/", "//evil.example", "/webapp/browser", "browser?x=<script>"):
        assert (await http.get("/webapp/login", params={"next": elsewhere})).status_code == 422
        response = await http.post("/webapp/login", data={"token": _token(settings), "next": elsewhere})
        assert response.status_code == 422 and "set-cookie" not in response.headers
    assert (await http.post("/webapp/login", data={"next": "browser"})).status_code == 422
    long_token = {"token": "x" * 2000, "next": "browser"}
    assert (await http.post("/webapp/login", data=long_token)).status_code == 422

    cookie = {"Cookie": f"{PAGE_COOKIE}={await _logged_in(http, settings)}"}
    for query in ("execution=nope", "run=dag-1-abc", "goal=0", "goal=x"):
        assert (await http.get(f"/webapp/browser?{query}", headers=cookie)).status_code == 422, query
    assert (await http.get("/webapp/api/executions/goal-1-abc", headers=cookie)).status_code == 422
    assert (await http.get("/webapp/api/runs?goal_id=0", headers=cookie)).status_code == 422
    assert (await http.get("/webapp/api/executions/dag-1-nosuch", headers=cookie)).status_code == 404
    events = await http.get("/webapp/api/executions/dag-1-nosuch/events", headers=cookie)
    assert events.status_code == 404

    execution_id = await start(api, (await make_dag(api, GATED))["id"])
    approve = f"/webapp/api/executions/{execution_id}/approve"
    typo = await http.post(approve, headers=cookie, json={"node_id": "gate", "coment": "ok"})
    assert typo.status_code == 422 and "coment" in typo.text
    assert (await http.post(approve, headers=cookie, json={})).status_code == 422
    cross_site = await http.post(
        approve, headers={**cookie, "Sec-Fetch-Site": "cross-site"}, json={"node_id": "gate"}
    )
    assert cross_site.status_code == 403
    not_waiting = await http.post(approve, headers=cookie, json={"node_id": "after"})
    assert not_waiting.status_code == 409 and "not waiting" in not_waiting.json()["detail"]
    assert (await api.post(f"/api/v1/dag-executions/{execution_id}/cancel")).status_code == 202


def test_the_graph_shape_comes_from_the_spec() -> None:
    spec = DagSpec.model_validate({"name": "shape", **GATED})
    spec.nodes.append(
        spec.nodes[0].model_copy(update={"id": "talk", "tool": None, "agent": "a", "prompt": "p"})
    )
    shape = shape_of(spec)
    assert shape.edges == [("a", "gate"), ("gate", "after")]
    assert shape.kinds == {"a": "tool", "gate": "approval", "after": "tool", "talk": "agent"}


@pytest_asyncio.fixture
async def served(settings: Settings, worker: None) -> AsyncIterator[str]:
    """The API under uvicorn on a free loopback port (a browser needs a real server)."""
    async with serving(settings) as url:
        yield url


def says(text: str) -> Any:
    return lambda _body: {"role": "assistant", "content": text}


async def _wait_listed(api: httpx.AsyncClient, goal_id: int, run_id: str) -> None:
    """Until visibility lists the run under its goal (the page lists runs from there)."""
    async with asyncio.timeout(30):
        while True:
            found = (await api.get("/api/v1/runs", params={"goal_id": goal_id})).json()
            if any(run["id"] == run_id for run in found):
                return
            await asyncio.sleep(0.2)


async def _text_of(page: Any, node_id: str) -> tuple[str, str]:
    """(the node's status, its text) as the page shows them."""
    item = page.locator(f'li.node[data-node-id="{node_id}"]')
    return await item.get_attribute("data-status") or "", await item.locator("pre.text").inner_text()


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="Debian package chromium not installed")
async def test_a_token_holder_sees_the_graph_a_streaming_node_and_approves_in_headless_chromium(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings, served: str, tmp_path: Any
) -> None:
    talker = await make_agent(api, (await make_provider(api, fake_llm))["id"])
    text = " ".join(f"word{i}" for i in range(WORDS))
    fake_llm.handlers[talker["model"]] = says(text)
    fake_llm.paces[talker["model"]] = PACE_S
    plan = {
        "name": "talk-then-gate",
        "nodes": [
            {"id": "say", "agent": talker["name"], "prompt": "Talk."},
            {
                "id": "gate",
                "tool": "noop",
                "input": {"value": 1},
                "depends_on": ["say"],
                "requires_approval": True,
            },
            {"id": "after", "tool": "noop", "input": {"value": 2}, "depends_on": ["gate"]},
        ],
    }
    goal = await make_goal(api, (await make_goal_agent(api, fake_llm, plan=plan))["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    await _wait_listed(api, goal["id"], run_id)

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 900, "height": 1000})
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(served) else None)
            # A deep link without the login: the login, then back to that goal's runs.
            await page.goto(f"{served}/webapp/browser?goal={goal['id']}")
            assert "/webapp/login" in page.url
            await page.fill('input[name="token"]', _token(settings))
            await page.click('button[type="submit"]')
            await page.wait_for_url(f"{served}/webapp/browser?goal={goal['id']}")
            await page.locator(f'li.goal[data-goal-id="{goal["id"]}"]').wait_for(timeout=15_000)
            assert goal["title"] in await page.inner_text("#runs-title")
            await page.locator(f'li.run[data-run-id="{run_id}"]').click(timeout=15_000)

            # The graph: three boxes, two arrows, drawn from the execution's nodes and edges.
            await page.locator('svg#dag g.gnode[data-node-id="say"]').wait_for(timeout=30_000)
            assert await page.locator("svg#dag g.gnode").count() == 3
            assert await page.locator('svg#dag path.edge[data-from="say"][data-to="gate"]').count() == 1
            assert await page.locator('svg#dag path.edge[data-from="gate"][data-to="after"]').count() == 1
            assert await page.get_attribute('svg#dag g.gnode[data-node-id="gate"]', "data-kind") == "approval"

            # The running node's text grows on the page while the model writes, before it succeeds.
            running_with = (
                '([id, n]) => { const li = document.querySelector(`li.node[data-node-id="${id}"]`);'
                ' const g = document.querySelector(`g.gnode[data-node-id="${id}"]`);'
                " return li && g && li.dataset.status === 'running' && g.dataset.status === 'running'"
                " && li.querySelector('pre.text').textContent.length > n; }"
            )
            await page.wait_for_function(running_with, arg=["say", 0], timeout=30_000)
            status, first = await _text_of(page, "say")
            assert status == "running" and first and text.startswith(first)
            await page.wait_for_function(running_with, arg=["say", len(first) + 20], timeout=30_000)
            status, later = await _text_of(page, "say")
            assert status == "running" and len(later) > len(first) and text.startswith(later)
            assert not await page.locator('li.node[data-node-id="say"] button.approve').is_visible()

            await page.locator('li.node[data-node-id="say"][data-status="succeeded"]').wait_for(
                timeout=30_000
            )
            assert (await _text_of(page, "say"))[1] == text
            gate = page.locator('li.node[data-node-id="gate"][data-status="waiting_approval"]')
            await gate.wait_for(timeout=30_000)
            assert (
                await page.get_attribute('g.gnode[data-node-id="gate"]', "data-status") == "waiting_approval"
            )
            links = [await a.get_attribute("href") or "" for a in await page.locator("a.webui").all()]
            assert any(run_id in href for href in links), links
            assert all(href.startswith(settings.web_ui_url) for href in links), links

            waiting_shot = tmp_path / "run-page-waiting.png"
            await page.screenshot(path=str(waiting_shot), full_page=True)
            print(f"run page screenshot, the gate waiting: {waiting_shot}")
            assert await gate.locator("button.reject").is_visible()
            assert await page.locator("li.node button.approve:visible").count() == 1  # the gate's only
            await gate.locator("button.approve").click()
            await page.locator('g.gnode[data-node-id="after"][data-status="succeeded"]').wait_for(
                timeout=30_000
            )
            await page.locator('li.node[data-node-id="gate"][data-status="succeeded"]').wait_for(
                timeout=5_000
            )
            await page.locator("#run-status.succeeded").wait_for(timeout=60_000)
            assert await page.locator("li.node button.approve:visible").count() == 0

            shot_path = tmp_path / "run-page.png"
            shot = await page.screenshot(path=str(shot_path), full_page=True)
            print(f"run page screenshot: {shot_path}")
            body = await page.inner_text("body")
        finally:
            await browser.close()
    assert outside == [], "the page loaded something from elsewhere"
    assert run_id in body and _token(settings) not in body
    execution_id = next(href for href in links if "/dag-" in href).rsplit("/", 1)[-1]
    detail = (await api.get(f"/api/v1/dag-executions/{execution_id}")).json()
    assert {n["id"]: n["status"] for n in detail["nodes"]} == {
        "say": "succeeded",
        "gate": "succeeded",
        "after": "succeeded",
    }
    assert next(n for n in detail["nodes"] if n["id"] == "gate")["decided_by"] == "person"
    seen = colours(shot)
    assert seen[HEADER_BLUE] > 1000, "the header is not drawn"
    assert seen[SUCCEEDED_FILL] > 1000, "no succeeded node is drawn in the graph"
