"""core/payload_blobs.py against the session's PostgreSQL: a large payload leaves its pieces in the
database (sealed by the payload codec) and a small manifest in their place; the next turn of a
conversation stores only what is new; another process puts the payload back from the database;
forgetting a workflow deletes the pieces only it referred to."""

import json
import uuid
from typing import Any

from sqlmodel import col, func, select
from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from core.codec import codec_from_setting
from core.db import session_scope
from core.models import PayloadBlob, PayloadBlobLink
from core.payload_blobs import ENCODING, REF, blob_codec, forget
from core.settings import Settings
from tests.conftest import CODEC_KEYS


def plain(value: Any) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def conversation(turns: int, marker: str) -> dict[str, Any]:
    """What a model request carries: every message so far, each with a 2 KB tool result."""
    return {
        "messages": [
            {"kind": "request", "parts": [{"content": f"{marker} result {i} " + "x" * 2000}]}
            for i in range(turns)
        ],
        "model_settings": {"temperature": 0.2},
    }


def codec(settings: Settings, workflow_id: str) -> Any:
    inner = codec_from_setting(CODEC_KEYS)
    context = WorkflowSerializationContext(namespace="default", workflow_id=workflow_id)
    return blob_codec(settings, inner).with_context(context)


async def pieces() -> int:
    async with session_scope(Settings()) as session:
        return int((await session.exec(select(func.count()).select_from(PayloadBlob))).one())


async def test_a_large_payload_leaves_its_pieces_and_comes_back_whole(settings: Settings) -> None:
    marker = uuid.uuid4().hex
    value = conversation(40, marker)
    encoded = await codec(settings, f"wf-{marker}").encode([plain(value)])
    assert len(encoded[0].SerializeToString()) < 2000  # a manifest, sealed
    assert marker.encode() not in encoded[0].SerializeToString()
    # Another process (a fresh codec, nothing cached) reads the pieces back from the database.
    fresh = codec(Settings(), f"wf-{marker}")
    (decoded,) = await fresh.decode(encoded)
    assert decoded.metadata["encoding"] == b"json/plain" and json.loads(decoded.data) == value
    async with session_scope(settings) as session:
        rows = (await session.exec(select(PayloadBlob))).all()
    assert rows and not any(marker.encode() in row.data for row in rows)  # sealed at rest


async def test_the_next_turn_stores_only_what_is_new(settings: Settings) -> None:
    marker = uuid.uuid4().hex
    blobs = codec(settings, f"wf-{marker}")
    await blobs.encode([plain(conversation(30, marker))])
    before = await pieces()
    await blobs.encode([plain(conversation(31, marker))])
    # One new message and the messages list that holds the references: not thirty again.
    assert await pieces() - before <= 3


async def test_small_payloads_and_look_alike_values_pass_unharmed(settings: Settings) -> None:
    blobs = codec(settings, "wf-small")
    small = plain({"a": 1})
    (sealed,) = await blobs.encode([small])
    (back,) = await blobs.decode([sealed])
    assert back == small
    tricky = {"data": [{REF: "not a reference"}, {"$goalflow.escaped": {REF: "x"}}, "y" * 20000]}
    (sealed,) = await blobs.encode([plain(tricky)])
    (back,) = await blobs.decode([sealed])
    assert json.loads(back.data) == tricky
    (opened,) = await codec_from_setting(CODEC_KEYS).decode([sealed])  # type: ignore[union-attr]
    assert opened.metadata["encoding"] == ENCODING
    raw = Payload(metadata={"encoding": b"binary/plain"}, data=bytes(range(256)) * 400)
    (sealed,) = await blobs.encode([raw])
    assert len(sealed.data) < 1000
    (back,) = await codec(Settings(), "wf-small").decode([sealed])
    assert back == raw


async def test_forgetting_a_workflow_deletes_the_pieces_only_it_referred_to(settings: Settings) -> None:
    marker = uuid.uuid4().hex
    shared, own = conversation(20, marker), conversation(20, marker + "-own")
    await codec(settings, f"a-{marker}").encode([plain(shared), plain(own)])
    await codec(settings, f"b-{marker}").encode([plain(shared)])
    async with session_scope(settings) as session:
        linked = select(func.count()).select_from(PayloadBlobLink)
        a_links = (await session.exec(linked.where(col(PayloadBlobLink.workflow_id) == f"a-{marker}"))).one()
        deleted = await forget(session, [f"a-{marker}"])
        await session.commit()
        assert a_links > 0 and deleted > 0  # its own conversation's pieces
    (still,) = await codec(Settings(), f"b-{marker}").decode(
        await codec(settings, f"b-{marker}").encode([plain(shared)])
    )
    assert json.loads(still.data) == shared  # the shared pieces are still there
    async with session_scope(settings) as session:
        await forget(session, [f"b-{marker}"])
        await session.commit()
        left = (await session.exec(linked.where(col(PayloadBlobLink.workflow_id) == f"b-{marker}"))).one()
    assert left == 0


async def test_a_piece_deleted_with_one_workflow_is_stored_again_for_the_next(settings: Settings) -> None:
    marker = uuid.uuid4().hex
    value = conversation(20, marker)
    base = blob_codec(settings, codec_from_setting(CODEC_KEYS))  # one process: one cache

    def of(workflow_id: str) -> Any:
        return base.with_context(WorkflowSerializationContext(namespace="default", workflow_id=workflow_id))

    await of(f"a-{marker}").encode([plain(value)])
    async with session_scope(settings) as session:
        assert await forget(session, [f"a-{marker}"]) > 0
        await session.commit()
    # The same content for another workflow, from the process that still remembers the pieces:
    # another process must find them in the database.
    sealed = await of(f"b-{marker}").encode([plain(value)])
    (back,) = await codec(Settings(), f"b-{marker}").decode(sealed)
    assert json.loads(back.data) == value
