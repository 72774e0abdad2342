"""`/docs` and `/redoc` work with no network but the API's own: Swagger UI and ReDoc come from the
`fastapi-offline` package instead of a CDN (a machine that cannot reach one showed a blank page).
Checked in headless Chromium with every request to another origin refused."""

import shutil
from pathlib import Path

import pytest

from core.settings import Settings
from tests.stack import free_port
from tests.test_codec import served_api

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="system Chromium is not installed")


async def test_docs_and_redoc_render_every_operation_with_the_network_blocked(
    settings: Settings, tmp_path: Path
) -> None:
    from playwright.async_api import Route, async_playwright, expect

    own = settings.model_copy(update={"api_port": free_port()})
    async with served_api(own) as url, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = await browser.new_page()
            elsewhere: list[tuple[str, str]] = []

            async def only_the_api(route: Route) -> None:
                if route.request.url.startswith(url):
                    await route.continue_()
                else:
                    elsewhere.append((route.request.resource_type, route.request.url))
                    await route.abort()

            await page.route("**/*", only_the_api)
            await page.goto(f"{url}/docs")
            await expect(page.locator(".opblock").first).to_be_visible(timeout=30_000)
            assert await page.locator(".opblock").count() > 50
            await expect(
                page.get_by_text("/api/v1/dag-executions/{execution_id}/approve").first
            ).to_be_attached()
            await page.screenshot(path=str(tmp_path / "docs.png"))
            await page.goto(f"{url}/redoc")
            await expect(
                page.get_by_text("/api/v1/dag-executions/{execution_id}/approve").first
            ).to_be_attached(timeout=30_000)
            await page.screenshot(path=str(tmp_path / "redoc.png"))
        finally:
            await browser.close()
    # No script, stylesheet or font from another origin; ReDoc's "powered by" logo is an image.
    assert [(kind, where) for kind, where in elsewhere if kind != "image"] == []
