"""The chat intake on the real embedded model (SmolLM2-135M served by xllamacpp), no fakes for the
LLM: both agents answer their JSON schema natively (grammar-constrained), so every message ends
classified with entities that parse. What the tiny model decides is printed, not asserted: it is
for trying goalflow, not for quality."""

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from core import local_model
from core.settings import Settings
from services.defaults import DEFAULT_AGENTS
from tests.api.intake_helpers import outcome
from tests.conftest import ROOT, unique
from tests.stack import free_port

pytestmark = pytest.mark.slow

MESSAGES = (
    "Buy milk tomorrow at 5pm, remind Anna",
    "Pay the electricity bill of 84.20 EUR by Friday",
    "The new office opens on 5 March, see https://example.com/office",
    "Book a table for four at Luigi's on Saturday at 8pm",
)


@pytest_asyncio.fixture(scope="module")
async def local_base_url(settings: Settings) -> AsyncIterator[str]:
    """`python -m core.local_model` on a free port with the provisioned model file."""
    path = await asyncio.to_thread(local_model.provision, Settings(local_model_path=None))
    port = free_port()
    env = {
        **os.environ,
        "LOCAL_MODEL_PATH": str(path.resolve()),
        "LOCAL_MODEL_PORT": str(port),
        "LOCAL_MODEL_THREADS": "2",
        "PYTHONPATH": str(ROOT),
    }
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "core.local_model", cwd=ROOT, env=env)
    served = settings.model_copy(update={"local_model_port": port})
    try:
        async with asyncio.timeout(120):
            while not await local_model.answers(served):
                assert proc.returncode is None, "the local model exited"
                await asyncio.sleep(0.5)
        yield local_model.base_url(served)
    finally:
        proc.terminate()
        await proc.wait()


async def test_intake_on_the_local_model_classifies_every_message_within_its_schema(
    api: httpx.AsyncClient, client: Client, local_base_url: str
) -> None:
    response = await api.post(
        "/api/v1/providers",
        json={"name": unique("smollm2"), "kind": "local", "base_url": local_base_url},
    )
    assert response.status_code == 201, response.text
    # The default classifier and extractor (prompts, token caps, temperature 0) on this provider.
    for default in DEFAULT_AGENTS:
        if default.name in ("classifier", "extractor"):
            body = {
                "name": default.name,
                "provider_id": response.json()["id"],
                "model": local_model.MODEL_NAME,
                "system_prompt": default.system_prompt,
                "max_tokens": default.max_tokens,
                "temperature": 0,
                "activate": True,
            }
            assert (await api.post("/api/v1/agents", json=body)).status_code == 201
    results: list[dict[str, Any]] = []
    for text in MESSAGES:
        began = time.monotonic()
        created = await api.post(
            "/api/v1/messages",
            json={"text": text, "sent_at": "2026-03-02T10:00:00+01:00"},
        )
        assert created.status_code == 201, created.text
        result = await outcome(client, created.json(), timeout_s=300)
        seconds = time.monotonic() - began
        message = (await api.get(f"/api/v1/messages/{created.json()['id']}")).json()
        assert result.status == "classified", message["status_reason"]
        results.append({"text": text, "seconds": round(seconds, 1), **message["classification"]})
        print(f"{seconds:5.1f}s  {text!r}\n       {message['classification']}\n       {message['entities']}")
    assert len(results) == len(MESSAGES)
