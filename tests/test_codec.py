"""Payload encryption: what Temporal stores is ciphertext, the codec endpoints open it only for the
token holder, and keys rotate without losing what older keys wrote."""

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager
from pydantic import SecretStr, ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from api.main import create_app
from core.codec import ENCODING, KEY_ID, CodecKeyError, EncryptionCodec, key_id, new_codec_key, parse_keys
from core.settings import Settings
from core.temporal import connect
from tests.api.dag_helpers import make_dag, start, wait_closed, wait_node
from tests.conftest import ROOT, TEMPORAL_BIN, api_client, unique
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider, payloads_in
from tests.stack import free_port
from worker import build_worker

CODEC = "/api/v1/codec"


async def raw_history(settings: Settings, workflow_id: str) -> list[HistoryEvent]:
    """The history as Temporal stores it, read by a client that has no codec."""
    plain = await Client.connect(settings.temporal_target, namespace=settings.temporal_namespace)
    return list((await plain.get_workflow_handle(workflow_id).fetch_history()).events)


def stored_bytes(events: list[HistoryEvent]) -> bytes:
    return b"".join(event.SerializeToString() for event in events)


def as_json(payloads: list[Payload]) -> dict[str, list[dict[str, object]]]:
    """Payloads as the Web UI and CLI send them to a codec server."""
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, list[dict[str, dict[str, str] | str]]]) -> list[Payload]:
    out = []
    for p in body["payloads"]:
        metadata = p["metadata"]
        data = p["data"]
        assert isinstance(metadata, dict) and isinstance(data, str)
        out.append(
            Payload(
                metadata={k: base64.b64decode(v) for k, v in metadata.items()},
                data=base64.b64decode(data),
            )
        )
    return out


def json_payload(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


async def agent_and_tool_dag(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, prompt: str, tool_input: str
) -> str:
    """A finished execution whose history holds a prompt, a model output and a tool input."""
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"])
    dag = await make_dag(
        api,
        {
            "nodes": [
                {"id": "tool", "tool": "noop", "input": {"value": tool_input}},
                {"id": "ask", "agent": agent["name"], "prompt": prompt, "depends_on": ["tool"]},
            ]
        },
    )
    execution_id = await start(api, dag["id"])
    body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    return execution_id


async def test_no_prompt_output_or_tool_input_is_plaintext_in_temporals_store(
    api: httpx.AsyncClient, client: Client, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    prompt, tool_input = f"secret-prompt-{uuid.uuid4().hex}", f"secret-tool-input-{uuid.uuid4().hex}"
    execution_id = await agent_and_tool_dag(api, fake_llm, prompt, tool_input)

    stored = stored_bytes(await raw_history(settings, execution_id))
    # The fake model echoes the prompt, so the output holds it too.
    for secret in (prompt, tool_input, "You are terse."):
        assert secret.encode() not in stored, f"{secret!r} is readable in Temporal's store"
    assert b"node tool: noop" not in stored, "activity summaries are readable"
    # What operators need stays readable: the workflow id and the search attributes.
    assert execution_id.encode() in stored
    dag_id = execution_id.split("-")[1]
    assert b"DagId" in stored and json.dumps(dag_id).encode() in stored
    assert b'"succeeded"' in stored  # DagStatus, upserted as the run went

    # Every payload is ours, and the session's codec (the worker's) opens them all.
    payloads = [p for event in await raw_history(settings, execution_id) for p in payloads_in(event)]
    ours = [p for p in payloads if p.metadata.get("encoding") == ENCODING]
    assert ours and all(p.metadata[KEY_ID] for p in ours)
    codec = client.data_converter.payload_codec
    assert codec is not None
    opened = b"".join(p.data for p in await codec.decode(ours))
    assert prompt.encode() in opened and tool_input.encode() in opened


async def test_codec_endpoints_refuse_without_the_token(
    api: httpx.AsyncClient, anon: httpx.AsyncClient
) -> None:
    body = as_json([json_payload("x")])
    for path in ("/encode", "/decode"):
        assert (await anon.post(CODEC + path, json=body)).status_code == 401, path
        wrong = await anon.post(CODEC + path, json=body, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401, path
        forged = await anon.post(CODEC + path, json=body, cookies={"goalflow_codec": "0" * 64})
        assert forged.status_code == 401, path
    refused = await anon.post(f"{CODEC}/login", data={"token": "nope"})
    assert refused.status_code == 401
    assert "set-cookie" not in refused.headers


async def test_codec_endpoints_round_trip_for_the_token_and_its_login_cookie(
    api: httpx.AsyncClient, anon: httpx.AsyncClient, settings: Settings
) -> None:
    plain = [json_payload({"prompt": "hello"}), Payload(metadata={"encoding": b"binary/null"})]
    encoded = await api.post(f"{CODEC}/encode", json=as_json(plain))
    assert encoded.status_code == 200, encoded.text
    sealed = from_json(encoded.json())
    assert all(p.metadata["encoding"] == ENCODING for p in sealed)
    assert b"hello" not in b"".join(p.data for p in sealed)

    assert settings.api_token is not None
    login = await anon.post(f"{CODEC}/login", data={"token": settings.api_token.get_secret_value()})
    assert login.status_code == 200, login.text
    cookie = login.cookies["goalflow_codec"]
    assert settings.api_token.get_secret_value() not in cookie  # derived from the token, not it
    set_cookie = login.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=strict" in set_cookie and f"path={CODEC}" in set_cookie
    decoded = await anon.post(f"{CODEC}/decode", json=encoded.json(), cookies={"goalflow_codec": cookie})
    assert decoded.status_code == 200, decoded.text
    assert from_json(decoded.json()) == plain

    # What the codec did not write (a plaintext history's payloads) passes through.
    untouched = await api.post(f"{CODEC}/decode", json=as_json(plain))
    assert from_json(untouched.json()) == plain
    # A tampered payload is a precise 422, not a 500.
    tampered = as_json(sealed)
    tampered["payloads"][0]["data"] = base64.b64encode(b"\0" * 40).decode()
    bad = await api.post(f"{CODEC}/decode", json=tampered)
    assert bad.status_code == 422 and "payloads[0]" in bad.json()["detail"]
    not_b64 = await api.post(f"{CODEC}/decode", json={"payloads": [{"metadata": {}, "data": "%%%"}]})
    assert not_b64.status_code == 422


async def test_the_web_ui_origin_may_call_the_codec_with_its_cookie(
    api: httpx.AsyncClient, settings: Settings
) -> None:
    origin = settings.web_ui_url
    preflight = await api.options(
        f"{CODEC}/decode",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-namespace",
        },
    )
    assert preflight.status_code == 200, preflight.text
    assert preflight.headers["access-control-allow-origin"] == origin
    assert preflight.headers["access-control-allow-credentials"] == "true"
    stranger = await api.options(
        f"{CODEC}/decode",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in stranger.headers
    # Other routes do not open up to the Web UI's origin.
    other = await api.options(
        "/api/v1/goals", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert other.headers.get("access-control-allow-origin") != origin


@asynccontextmanager
async def codec_as_seen_from(settings: Settings, address: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API without a token, its requests arriving from `address` (the client's IP)."""
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app, client=(address, 50_000))
    async with LifespanManager(app), httpx.AsyncClient(transport=transport, base_url="http://api") as http:
        yield http


async def test_the_dev_web_ui_origin_decodes_from_loopback_without_a_token_and_nothing_else_does(
    settings: Settings, client: Client
) -> None:
    ui = "http://localhost:8299"  # what core/launcher.py api_env lists for make run's own UI
    trusted = settings.model_copy(update={"codec_trusted_origins": [ui, "http://127.0.0.1:8299"]})
    secret = f"trusted-{uuid.uuid4().hex}"
    codec = client.data_converter.payload_codec
    assert codec is not None
    body = as_json(await codec.encode([json_payload(secret)]))
    sent = {"Origin": ui, "X-Namespace": "default"}  # what Temporal UI 2.54 sends (tests/test_web_ui.py)
    async with codec_as_seen_from(trusted, "127.0.0.1") as local:
        decoded = await local.post(f"{CODEC}/decode", json=body, headers=sent)
        assert decoded.status_code == 200, decoded.text
        assert secret.encode() in from_json(decoded.json())[0].data
        assert decoded.headers["access-control-allow-origin"] == ui
        preflight = await local.options(
            f"{CODEC}/decode",
            headers={
                **sent,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type,x-namespace",
            },
        )
        assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ui
        assert (
            await local.post(f"{CODEC}/encode", json=as_json([json_payload("x")]), headers=sent)
        ).status_code == 200
        # Another origin, no origin, or the trusted one relayed by a proxy: the token is needed.
        for headers in (
            {"Origin": "http://evil.example"},
            {"Origin": "http://localhost:8300"},
            {},
            {**sent, "X-Forwarded-For": "203.0.113.9"},
            {**sent, "Forwarded": "for=203.0.113.9"},
        ):
            assert (await local.post(f"{CODEC}/decode", json=body, headers=headers)).status_code == 401, (
                headers
            )
    async with codec_as_seen_from(trusted, "192.168.1.20") as remote:  # not this machine
        assert (await remote.post(f"{CODEC}/decode", json=body, headers=sent)).status_code == 401
    async with codec_as_seen_from(settings, "127.0.0.1") as production_like:  # the setting empty
        assert settings.codec_trusted_origins == []
        assert (await production_like.post(f"{CODEC}/decode", json=body, headers=sent)).status_code == 401


def test_production_refuses_trusted_codec_origins() -> None:
    with pytest.raises(ValidationError, match="CODEC_TRUSTED_ORIGINS"):
        Settings(
            environment="production",
            api_token="t",
            encryption_keys="k",
            codec_keys=new_codec_key(),
            codec_trusted_origins=["http://localhost:8233"],
        )


async def test_an_old_key_still_decrypts_after_rotation() -> None:
    old, new = new_codec_key(), new_codec_key()
    before = EncryptionCodec(parse_keys(old))
    [sealed] = await before.encode([json_payload("written before the rotation")])
    rotated = EncryptionCodec(parse_keys(f"{new},{old}"))
    assert await rotated.decode([sealed]) == [json_payload("written before the rotation")]
    [resealed] = await rotated.encode([json_payload("after")])
    assert (
        resealed.metadata[KEY_ID].decode() == key_id(base64.urlsafe_b64decode(new)) != sealed.metadata[KEY_ID]
    )
    with pytest.raises(CodecKeyError, match="lacks"):
        await EncryptionCodec(parse_keys(new)).decode([sealed])  # the old key dropped too early


async def test_a_run_started_under_the_old_key_finishes_under_the_new_one(settings: Settings) -> None:
    """Rotation mid-run: a worker and API with `NEW,OLD` replay what `OLD` wrote and go on."""
    old, new = new_codec_key(), new_codec_key()
    queue = f"rotation-{uuid.uuid4().hex[:8]}"
    before = settings.model_copy(update={"codec_keys": SecretStr(old), "task_queue": queue})
    after = settings.model_copy(update={"codec_keys": SecretStr(f"{new},{old}"), "task_queue": queue})
    spec = {
        "nodes": [
            {"id": "a", "tool": "noop", "input": {"value": "before"}},
            {
                "id": "gate",
                "tool": "noop",
                "input": {"value": "after"},
                "depends_on": ["a"],
                "requires_approval": True,
            },
        ]
    }
    async with api_client(before) as api, build_worker(await connect(before), before):
        execution_id = await start(api, (await make_dag(api, spec))["id"])
        await wait_node(api, execution_id, "gate", "waiting_approval")
    async with api_client(after) as api, build_worker(await connect(after), after):
        approved = await api.post(f"/api/v1/dag-executions/{execution_id}/approve", json={"node_id": "gate"})
        assert approved.status_code == 200, approved.text
        body = await wait_closed(api, execution_id)
    assert body["status"] == "succeeded", body
    assert [n["output"] for n in body["nodes"]] == ["before", "after"]
    key_ids = {
        p.metadata[KEY_ID].decode()
        for event in await raw_history(settings, execution_id)
        for p in payloads_in(event)
        if p.metadata.get("encoding") == ENCODING
    }
    assert key_ids == {key_id(base64.urlsafe_b64decode(k)) for k in (old, new)}


def test_codec_keys_are_checked_at_start_without_echoing_them() -> None:
    from core.settings import describe_settings_error

    secret = base64.urlsafe_b64encode(b"k" * 16).decode()  # 16 bytes: AES-128, not ours
    with pytest.raises(ValidationError) as caught:
        Settings(codec_keys=secret)
    [line] = describe_settings_error(caught.value)
    assert line.startswith("CODEC_KEYS:") and "32-byte" in line and secret not in line
    with pytest.raises(ValidationError, match="CODEC_KEYS must be set in production"):
        Settings(environment="production", api_token="t", encryption_keys="k", codec_keys=None)


@asynccontextmanager
async def served_api(settings: Settings) -> AsyncIterator[str]:
    """The API on API_PORT of loopback (for the CLI and a browser), in this event loop."""
    port = settings.api_port
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the API did not start"
            await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def temporal_cli(*args: str) -> str:
    """`temporal ... --output json`, with every payload's data (base64 there) spelled out."""
    proc = await asyncio.create_subprocess_exec(
        TEMPORAL_BIN, *args, "--output", "json", stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()

    def data(node: object) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    yield base64.b64decode(value).decode("utf-8", "replace")
                else:
                    yield from data(value)
        elif isinstance(node, list):
            for item in node:
                yield from data(item)

    return "\n".join(data(json.loads(out)))


async def test_temporal_workflow_show_decodes_through_the_api_only_with_the_token(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, settings: Settings
) -> None:
    prompt = f"cli-prompt-{secrets.token_hex(8)}"
    execution_id = await agent_and_tool_dag(api, fake_llm, prompt, unique("cli-tool"))
    show = ["workflow", "show", "--address", settings.temporal_target, "--workflow-id", execution_id]
    assert prompt not in await temporal_cli(*show)
    async with served_api(settings.model_copy(update={"api_port": free_port()})) as url:
        assert settings.api_token is not None
        token = settings.api_token.get_secret_value()
        decoded = await temporal_cli(
            *show, "--codec-endpoint", f"{url}{CODEC}", "--codec-auth", f"Bearer {token}"
        )
        assert prompt in decoded
        proc = await asyncio.create_subprocess_exec(
            TEMPORAL_BIN, *show, "--codec-endpoint", f"{url}{CODEC}", "--command-timeout", "3s",
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )  # fmt: skip
        refused, _ = await proc.communicate()
        # Without the token the API answers 401 to every try: the CLI gives up, nothing decoded.
        assert proc.returncode != 0 and prompt not in refused.decode()


def test_rotate_codec_key_puts_a_new_key_first_and_keeps_the_old(tmp_path: Path) -> None:
    old = new_codec_key()
    (tmp_path / "data").mkdir()
    generated = tmp_path / "data" / "generated.env"
    generated.write_text(f"API_TOKEN=t\nCODEC_KEYS={old}\n")
    env = {k: v for k, v in os.environ.items() if k != "CODEC_KEYS"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "cli", "rotate-codec-key"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert old not in result.stdout  # the keys stay in the file, not on the terminal
    lines = generated.read_text().splitlines()
    assert lines[0] == "API_TOKEN=t"
    [value] = [line.removeprefix("CODEC_KEYS=") for line in lines if line.startswith("CODEC_KEYS=")]
    new, kept = value.split(",")
    assert kept == old and new != old
    assert [k.id for k in parse_keys(value)] == [key_id(base64.urlsafe_b64decode(k)) for k in (new, old)]


def test_make_run_generates_a_codec_key_and_points_the_web_ui_at_the_codec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from core import launcher
    from core.settings import get_settings

    monkeypatch.chdir(tmp_path)
    for name in ("API_TOKEN", "ENCRYPTION_KEYS", "CODEC_KEYS"):
        monkeypatch.delenv(name, raising=False)
    launcher.ensure_generated_secrets()
    generated = (tmp_path / "data" / "generated.env").read_text()
    [value] = [line.removeprefix("CODEC_KEYS=") for line in generated.splitlines() if "CODEC_KEYS=" in line]
    assert len(parse_keys(value)) == 1
    get_settings.cache_clear()  # the generated values are only for this directory
    args = launcher.temporal_command(Settings(api_port=8123, codec_keys=value))
    assert args[args.index("--ui-codec-endpoint") + 1] == "http://127.0.0.1:8123/api/v1/codec"
