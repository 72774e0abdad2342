"""The Telegram Web App: requests authenticated by Telegram-signed initData, and the page itself in
a real headless Chromium (Debian's `chromium`, driven by Playwright), live from the event stream."""

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import async_playwright
from temporalio.client import Client

from core.settings import Settings
from tests.api.goal_helpers import make_goal, make_goal_agent
from tests.api.sse import serving
from tests.bot.conftest import ALICE, STRANGER
from tests.bot.png import colours
from tests.conftest import api_client
from tests.fakes.openai_server import FakeOpenAI

CHROMIUM = "/usr/bin/chromium"
SUCCEEDED_GREEN = (0x15, 0x80, 0x3D)
HEADER_BLUE = (0x1F, 0x3A, 0x8A)

GATED_PLAN: dict[str, Any] = {
    "name": "gated",
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "6 * 7"}},
        {
            "id": "gate",
            "tool": "noop",
            "input": {"value": 1},
            "depends_on": ["calc"],
            "requires_approval": True,
        },
        {"id": "after", "tool": "noop", "input": {"value": 2}, "depends_on": ["gate"]},
    ],
}


def init_data(token: str, user_id: int, *, auth_date: int | None = None, first_name: str = "Alice") -> str:
    """initData as Telegram signs it: HMAC-SHA256 of the sorted fields under HMAC("WebAppData", token)."""
    fields = {
        "query_id": "AAHdF6IQAAAAAN0XohDhrOrc",
        "user": json.dumps(
            {"id": user_id, "first_name": first_name, "language_code": "en"}, separators=(",", ":")
        ),
        "auth_date": str(auth_date if auth_date is not None else int(time.time())),
    }
    check = "\n".join(f"{k}={v}" for k, v in sorted(fields.items()))
    secret = hmac.new(b"WebAppData", token.encode(), hashlib.sha256).digest()
    fields["hash"] = hmac.new(secret, check.encode(), hashlib.sha256).hexdigest()
    return urlencode(fields)


def _token(settings: Settings) -> str:
    assert settings.telegram_bot_token is not None
    return settings.telegram_bot_token.get_secret_value()


@pytest_asyncio.fixture(scope="module")
async def webapp_api(bot_settings: Settings, worker: None) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(bot_settings) as http:
        yield http


async def test_init_data_good_tampered_expired_missing_and_a_stranger(
    bot_settings: Settings, webapp_api: httpx.AsyncClient
) -> None:
    token = _token(bot_settings)
    good = init_data(token, ALICE)

    async def runs(header: str | None) -> httpx.Response:
        headers = {} if header is None else {"X-Telegram-Init-Data": header}
        return await webapp_api.get("/webapp/api/runs", headers={**headers, "Authorization": ""})

    response = await runs(good)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)

    tampered = good.replace(quote(f'"id":{ALICE}', safe=""), quote(f'"id":{STRANGER}', safe=""))
    assert tampered != good
    assert (await runs(tampered)).status_code == 401
    assert (await runs(good.replace("hash=", "hash=0"))).status_code == 401
    assert (await runs(init_data("999:other-bot-token", ALICE))).status_code == 401

    expired = init_data(
        token, ALICE, auth_date=int(time.time()) - bot_settings.telegram_webapp_max_age_s - 60
    )
    response = await runs(expired)
    assert response.status_code == 401 and "expired" in response.json()["detail"]

    assert (await runs(None)).status_code == 401
    stranger = await runs(init_data(token, STRANGER))
    assert stranger.status_code == 403

    page = await webapp_api.get("/webapp", headers={"Authorization": ""})
    assert page.status_code == 200 and "X-Telegram-Init-Data" in page.text

    # Good initData is enough without the browser login's cookie, and bad initData is not made
    # good by one: whoever sends initData is judged by it.
    api_token = bot_settings.api_token
    assert api_token is not None
    login = await webapp_api.post(
        "/webapp/login", data={"token": api_token.get_secret_value()}, headers={"Authorization": ""}
    )
    assert login.status_code == 303
    webapp_api.cookies.clear()
    set_cookies = login.headers.get_list("set-cookie")
    [cookie] = [c.split(";")[0] for c in set_cookies if c.startswith("goalflow_page=")]
    tampered_with_cookie = await webapp_api.get(
        "/webapp/api/runs", headers={"X-Telegram-Init-Data": tampered, "Cookie": cookie, "Authorization": ""}
    )
    assert tampered_with_cookie.status_code == 401


@pytest_asyncio.fixture
async def served(bot_settings: Settings, worker: None) -> AsyncIterator[str]:
    """The API under uvicorn on a free loopback port (a browser needs a real server)."""
    async with serving(bot_settings) as url:
        yield url


@pytest.mark.skipif(
    not __import__("os").path.exists(CHROMIUM), reason="Debian package chromium not installed"
)
async def test_the_web_app_shows_runs_and_a_runs_nodes_live_in_headless_chromium(
    api: httpx.AsyncClient,
    client: Client,
    bot_settings: Settings,
    fake_llm: FakeOpenAI,
    served: str,
    tmp_path: Any,
) -> None:
    agent = await make_goal_agent(api, fake_llm, plan=GATED_PLAN)
    goal = await make_goal(api, agent["name"])
    run_id = (await api.post(f"/api/v1/goals/{goal['id']}/run")).json()["id"]
    async with asyncio.timeout(60):
        while True:
            steps = (await api.get(f"/api/v1/runs/{run_id}/steps")).json()
            gate = next((s for s in steps.get("steps", []) if s["id"] == "gate"), None)
            if gate is not None and gate["status"] == "waiting_approval":
                break
            await asyncio.sleep(0.2)
    execution_id = steps["dag_workflow_id"]

    url = f"{served}/webapp#tgWebAppData={quote(init_data(_token(bot_settings), ALICE))}&tgWebAppVersion=7.0"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = await browser.new_page(viewport={"width": 420, "height": 760})
            await page.route(
                "https://telegram.org/**", lambda route: route.abort()
            )  # offline: no Telegram script
            await page.goto(url)
            run_item = page.locator(f'li.run[data-run-id="{run_id}"]')
            await run_item.wait_for(timeout=30_000)
            await run_item.click()
            await page.locator('li.node[data-node-id="gate"][data-status="waiting_approval"]').wait_for(
                timeout=30_000
            )
            assert await page.locator('li.node[data-node-id="calc"][data-status="succeeded"]').count() == 1
            # The same graph as in a browser (tests/api/test_run_page.py), with its decision buttons.
            assert await page.locator("svg#dag g.gnode").count() == 3
            waiting_box = 'g.gnode[data-node-id="gate"][data-status="waiting_approval"]'
            assert await page.locator(waiting_box).count() == 1
            assert await page.locator('li.node[data-node-id="gate"] button.approve').is_visible()

            # Approved elsewhere: the page learns it from the event stream, without a reload.
            approved = await api.post(
                f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"}
            )
            assert approved.status_code == 200, approved.text
            await page.locator('li.node[data-node-id="after"][data-status="succeeded"]').wait_for(
                timeout=30_000
            )
            await page.locator("#run-status.succeeded").wait_for(timeout=30_000)

            shot = await page.screenshot(path=str(tmp_path / "webapp.png"), full_page=True)
            text = await page.inner_text("body")
        finally:
            await browser.close()
    assert run_id in text and "gate" in text and "after" in text
    seen = colours(shot)
    assert len(seen) > 50, "the screenshot is (nearly) blank"
    assert seen[HEADER_BLUE] > 1000, "the header is not drawn"
    assert seen[SUCCEEDED_GREEN] > 200, "no succeeded badge is drawn"
