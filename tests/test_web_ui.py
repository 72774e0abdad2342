"""The Temporal Web UI as a person sees it: a DAG execution opened in a real browser (system
Chromium through Playwright) shows its decoded node summaries and its search attributes through
the API's codec endpoint, for the token holder only; Temporal's own SQLite file holds no input
in plaintext. `make run`'s own dev Web UI decodes with no login at all (CODEC_TRUSTED_ORIGINS).
Screenshots of each view are left in the test's tmp_path."""

import asyncio
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from contracts.search import SEARCH_ATTRIBUTES
from core.settings import Settings
from core.temporal import connect
from tests.api.dag_helpers import make_dag, start, wait_closed
from tests.conftest import FAST_MATCHING, TEMPORAL_BIN
from tests.stack import free_port
from tests.test_codec import served_api
from worker import build_worker

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="system Chromium is not installed")


@asynccontextmanager
async def dev_server(tmp_path: Path, *, codec_endpoint: str) -> AsyncIterator[tuple[str, str, Path]]:
    """`temporal server start-dev` with the Web UI, a SQLite file and the codec endpoint, as
    `make run` starts it; yields (gRPC target, Web UI URL, database file)."""
    port, ui_port = free_port(), free_port()
    db = tmp_path / "temporal.db"
    args = [
        TEMPORAL_BIN, "server", "start-dev", "--db-filename", str(db), "--ip", "127.0.0.1",
        "--port", str(port), "--ui-port", str(ui_port), "--ui-codec-endpoint", codec_endpoint,
        "--log-level", "warn", *FAST_MATCHING,
    ]  # fmt: skip
    for key in SEARCH_ATTRIBUTES:
        args += ["--search-attribute", f"{key.name}=Keyword"]
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    ui = f"http://127.0.0.1:{ui_port}"
    try:
        async with httpx.AsyncClient() as http:
            for _ in range(240):
                try:
                    if (await http.get(ui)).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert proc.returncode is None, "the dev server exited"
                await asyncio.sleep(0.5)
        yield f"127.0.0.1:{port}", ui, db
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        await proc.wait()


def stored_bytes(db: Path) -> bytes:
    """Temporal's SQLite database as it sits on disk (with its write-ahead log, if any)."""
    return b"".join(path.read_bytes() for path in db.parent.glob(f"{db.name}*"))


async def test_the_web_ui_shows_decoded_node_summaries_and_search_attributes_to_the_token_holder(
    settings: Settings, tmp_path: Path
) -> None:
    from playwright.async_api import Page, async_playwright, expect

    secret = f"secret-input-{uuid.uuid4().hex}"
    artifact = f"{uuid.uuid4().hex}.md"
    base = settings.model_copy(update={"api_port": free_port(), "task_queue": f"ui-{uuid.uuid4().hex[:8]}"})
    async with dev_server(tmp_path, codec_endpoint=base.codec_endpoint) as (target, ui, db):
        own = base.model_copy(update={"temporal_address": target, "temporal_ui_url": ui})
        assert own.api_token is not None
        token = own.api_token.get_secret_value()
        async with served_api(own) as api_url, build_worker(await connect(own), own):
            headers = {"Authorization": f"Bearer {token}"}
            async with httpx.AsyncClient(base_url=api_url, headers=headers) as http:
                spec = {
                    "nodes": [
                        {"id": "fetch", "tool": "noop", "input": {"value": secret}},
                        {
                            "id": "save",
                            "tool": "write_artifact",
                            "input": {"name": artifact, "content": "{{nodes.fetch.output}}"},
                            "depends_on": ["fetch"],
                        },
                    ]
                }
                dag = await make_dag(http, spec)
                execution_id = await start(http, dag["id"])
                assert (await wait_closed(http, execution_id))["status"] == "succeeded"

            # Temporal's own store: ids and activity types readable, the input nowhere.
            stored = stored_bytes(db)
            assert execution_id.encode() in stored and b"write_artifact" in stored
            assert secret.encode() not in stored

            page_url = f"{ui}/namespaces/default/workflows/{execution_id}"
            summary = "node save: write_artifact"
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
                )

                async def opened(page: Page, name: str) -> str:
                    """The execution's page once its timeline is drawn, and its text."""
                    await page.goto(page_url)
                    await expect(page.get_by_text("record_run_usage").first).to_be_visible(timeout=30_000)
                    await page.screenshot(path=str(tmp_path / f"{name}.png"))
                    return await page.inner_text("body")

                async def search_attributes(page: Page, name: str) -> str:
                    await page.get_by_text("Search Attributes", exact=True).click()
                    await expect(page.get_by_text("DagId").first).to_be_visible(timeout=30_000)
                    await page.screenshot(path=str(tmp_path / f"{name}-search-attributes.png"))
                    return await page.inner_text("body")

                # The token holder: gives the token once (the API's login page sets the cookie),
                # then, in the Web UI's Codec Server dialog, uses this endpoint with "include
                # cross-origin credentials" (the dev server cannot set that cluster-wide).
                holder = await (await browser.new_context()).new_page()
                await holder.goto(f"{api_url}/api/v1/codec/login")
                await holder.fill("input[name=token]", token)
                await holder.click("button[type=submit]")
                await expect(holder.get_by_text("may now decode")).to_be_visible()
                await holder.goto(f"{ui}/namespaces/default/workflows")
                await holder.locator("[data-testid^=data-encoder-status]").click()
                await holder.get_by_text("Use my browser setting").click()
                await holder.get_by_placeholder("Paste your endpoint here").fill(own.codec_endpoint)
                await holder.get_by_test_id("data-encoder-include-credentials").click()
                await holder.screenshot(path=str(tmp_path / "codec-dialog.png"))
                await holder.get_by_role("button", name="Apply").click()
                await opened(holder, "holder")
                await expect(holder.get_by_text(summary).first).to_be_visible(timeout=30_000)
                await expect(holder.get_by_text(secret).first).to_be_visible(timeout=30_000)
                text = await search_attributes(holder, "holder")
                for name in ("DagId", "RunKind", "DagStatus"):
                    assert name in text
                assert str(dag["id"]) in text and "succeeded" in text

                # Anyone else sees the same page encrypted: no summary, no input; ids and
                # search attributes stay readable.
                stranger = await (await browser.new_context()).new_page()
                text = await opened(stranger, "stranger")
                assert summary not in text and secret not in text
                assert execution_id in text
                text = await search_attributes(stranger, "stranger")
                assert "DagId" in text and "succeeded" in text
                await browser.close()


@pytest.mark.slow
async def test_make_runs_own_web_ui_shows_decoded_payloads_with_no_login(
    settings: Settings, tmp_path: Path
) -> None:
    """The launcher's dev Web UI (CODEC_TRUSTED_ORIGINS, core/launcher.py api_env) decodes at
    first sight, under either of its names; no codec login, no Codec Server dialog."""
    from playwright.async_api import Request, async_playwright, expect

    from core.launcher import dev_ui_origins

    secret = f"first-sight-input-{uuid.uuid4().hex}"
    base = settings.model_copy(update={"api_port": free_port()})
    async with dev_server(tmp_path, codec_endpoint=base.codec_endpoint) as (target, ui, _):
        ui_port = int(ui.rsplit(":", 1)[1])
        own = base.model_copy(
            update={
                "temporal_address": target,
                "temporal_ui_port": ui_port,
                "codec_trusted_origins": dev_ui_origins(
                    base.model_copy(update={"temporal_ui_port": ui_port})
                ),
            }
        )
        async with served_api(own):
            client = await connect(own)
            workflow_id = f"first-sight-{uuid.uuid4().hex[:8]}"
            # No worker: the encrypted input only has to be in the history.
            handle = await client.start_workflow(
                "FirstSight", secret, id=workflow_id, task_queue=f"ui-{uuid.uuid4().hex[:8]}"
            )
            seen: list[dict[str, str]] = []  # the codec calls' headers, as the browser sent them
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
                )
                for host in ("127.0.0.1", "localhost"):
                    page = await (await browser.new_context()).new_page()

                    async def note(request: Request) -> None:
                        if "/api/v1/codec/decode" in request.url:
                            seen.append(await request.all_headers())

                    page.on("request", note)
                    await page.goto(f"http://{host}:{ui_port}/namespaces/default/workflows/{workflow_id}")
                    await expect(page.get_by_text(secret).first).to_be_visible(timeout=30_000)
                    await page.screenshot(path=str(tmp_path / f"first-sight-{host}.png"))
                await browser.close()
            await handle.terminate()
    # Let in by its origin alone: Temporal UI 2.54 sends no token and no cookie (it POSTs JSON
    # with X-Namespace, after a CORS preflight the API answers for these origins).
    assert {h["origin"] for h in seen} == set(own.codec_trusted_origins), seen
    assert not [h for h in seen if "authorization" in h or "cookie" in h], seen
