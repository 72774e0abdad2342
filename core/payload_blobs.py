"""Large Temporal payloads by reference: the pieces of a big payload are stored once, by content
hash, in the database, and the history keeps a small manifest.

Every activity input and result, workflow input, signal, update and query answer goes through
`BlobCodec`, the first step of the data converter's codec (the encryption codec, when on, seals
what it gives on). A JSON payload of at least `payload_blob_threshold_bytes` is taken apart:
each string, list or object that serializes to `PIECE_MIN_BYTES` or more is replaced, innermost
first, by `{"$goalflow.blob": "<hash>"}`, and the piece is stored under that hash (a large
payload in another encoding is stored whole). An agent's conversation, which every model
request sends whole, thus stores each message once: turn N adds its new messages and a manifest
of references, not turns 1..N-1 again, and the history grows by about the same small payload
per turn whatever the conversation's length. Small payloads pass through untouched (only their
size is looked at).

Pieces are sealed with the payload codec's key before they are stored, so the database holds no
more plaintext than Temporal does, and they are hashed with a key derived from it (equal pieces
share a row, but a hash says nothing about a guessed content). Each piece is linked to the
workflow whose payload referred to it (the serialization context says which); deleting an
execution, or its passing Temporal's retention (`prune`), drops its links and the pieces that
no other workflow refers to. A process keeps the pieces it recently stored or read in memory,
and the links it wrote, so the next turn's payload costs neither a write nor a read of what it
repeats.
"""

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cachetools import LRUCache
from sqlalchemy import delete, exists
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)
from temporalio.service import RPCError, RPCStatusCode

from core.codec import EncryptionCodec
from core.db import session_scope, upsert_insert
from core.models.common import utcnow
from core.models.payload_blob import PayloadBlob, PayloadBlobLink
from core.settings import Settings

log = logging.getLogger(__name__)

ENCODING = b"json/goalflow-blobs"
"""A manifest: the payload's JSON with its large pieces replaced by references."""
REF = "$goalflow.blob"
ESCAPED = "$goalflow.escaped"
"""Wraps an object of the payload's own that looks like a reference (or like this wrapper)."""
WHOLE = "$goalflow.whole"
ORIGINAL = "goalflow-original-encoding"
"""A large payload that is not JSON (bytes, protobuf) is stored whole; its encoding is kept here."""
PIECE_MIN_BYTES = 1024
"""A piece smaller than this stays inline (a reference costs about 90 bytes)."""
CACHE_BYTES = 64 * 1024 * 1024
PRUNE_AFTER = timedelta(days=1)
PRUNE_EVERY = timedelta(hours=1)
_PLAIN = b"json/plain"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class _Cache:
    """Recently stored or read pieces of this process, by hash, bounded by their bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.pieces: LRUCache[str, bytes] = LRUCache(maxsize=max_bytes, getsizeof=len)
        self.links: LRUCache[tuple[str, str], bool] = LRUCache(maxsize=200_000)


@dataclass(frozen=True)
class _Store:
    """Where pieces go: the database, sealed by `seal` when payloads are encrypted."""

    settings: Settings
    seal: EncryptionCodec | None
    cache: _Cache = field(default_factory=_Cache)

    def digest(self, data: bytes) -> str:
        if self.seal is None:
            return hashlib.sha256(data).hexdigest()
        return hmac.new(self.seal.digest_key, data, hashlib.sha256).hexdigest()

    def _sealed(self, data: bytes) -> bytes:
        if self.seal is None:
            return data
        return self.seal.encrypt(Payload(data=data)).SerializeToString()

    def _opened(self, data: bytes) -> bytes:
        if self.seal is None:
            return data
        return self.seal.decrypt(Payload.FromString(data)).data

    async def put(self, pieces: dict[str, bytes], workflow_id: str | None) -> None:
        """Store pieces and link them to `workflow_id`. A piece this workflow is known to link
        already is skipped: while its link stands no pruning deletes it. Any other piece is
        written (ON CONFLICT DO NOTHING) even if this process stored it before, because another
        workflow's deletion may have removed it since; piece and link go in one transaction."""
        todo = {
            h: d for h, d in pieces.items() if not workflow_id or (h, workflow_id) not in self.cache.links
        }
        if not todo:
            return
        async with session_scope(self.settings) as session:
            insert = upsert_insert(session)
            rows = [
                {"hash": h, "data": self._sealed(d), "size": len(d), "created_at": utcnow()}
                for h, d in todo.items()
            ]
            await session.exec(insert(PayloadBlob).values(rows).on_conflict_do_nothing())
            if workflow_id:
                links = [{"hash": h, "workflow_id": workflow_id, "created_at": utcnow()} for h in todo]
                await session.exec(insert(PayloadBlobLink).values(links).on_conflict_do_nothing())
            await session.commit()
        for h, d in todo.items():
            self.cache.pieces[h] = d
            if workflow_id:
                self.cache.links[(h, workflow_id)] = True

    async def get(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = set(hashes)
        found: dict[str, bytes] = {}
        missing = []
        for h in wanted:
            if (cached := self.cache.pieces.get(h)) is not None:
                found[h] = cached
            else:
                missing.append(h)
        if missing:
            async with session_scope(self.settings) as session:
                rows = (
                    await session.exec(select(PayloadBlob).where(col(PayloadBlob.hash).in_(missing)))
                ).all()
            for row in rows:
                found[row.hash] = self.cache.pieces[row.hash] = self._opened(row.data)
        if lost := wanted - set(found):
            raise LookupError(f"payload pieces are gone from the database: {sorted(lost)[:3]}")
        return found


class BlobCodec(PayloadCodec, WithSerializationContext):
    """Takes large JSON payloads apart into stored pieces (encode) and puts them back (decode);
    then hands them to `inner` (the encryption codec) when there is one."""

    def __init__(
        self,
        settings: Settings,
        inner: EncryptionCodec | None,
        *,
        threshold: int,
        _store: _Store | None = None,
        _workflow_id: str | None = None,
    ) -> None:
        self.inner = inner
        self.threshold = threshold
        self._store = _store or _Store(settings, inner)
        self._workflow_id = _workflow_id

    def with_context(self, context: SerializationContext) -> "BlobCodec":
        workflow_id = None
        if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext):
            workflow_id = context.workflow_id
        if workflow_id == self._workflow_id:
            return self
        return BlobCodec(
            self._store.settings,
            self.inner,
            threshold=self.threshold,
            _store=self._store,
            _workflow_id=workflow_id,
        )

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        out = [await self._shrink(p) if self._large(p) else p for p in payloads]
        return await self.inner.encode(out) if self.inner is not None else out

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        opened = await self.inner.decode(payloads) if self.inner is not None else list(payloads)
        return [await self._expand(p) if p.metadata.get("encoding") == ENCODING else p for p in opened]

    def _large(self, payload: Payload) -> bool:
        return len(payload.data) >= self.threshold and payload.metadata.get("encoding") != ENCODING

    async def _shrink(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != _PLAIN:  # bytes, protobuf: stored whole
            digest = self._store.digest(payload.data)
            await self._store.put({digest: payload.data}, self._workflow_id)
            metadata = dict(payload.metadata)
            metadata[ORIGINAL] = metadata.get("encoding", b"")
            metadata["encoding"] = ENCODING
            return Payload(metadata=metadata, data=_dumps({WHOLE: digest}))
        pieces: dict[str, bytes] = {}

        def walk(value: Any) -> Any:
            if isinstance(value, dict):
                value = {k: walk(v) for k, v in value.items()}
                if set(value) in ({REF}, {ESCAPED}):  # the payload's own look-alike: escaped
                    value = {ESCAPED: value}
            elif isinstance(value, list):
                value = [walk(v) for v in value]
            elif not isinstance(value, str):
                return value
            return piece(value)

        def piece(value: Any) -> Any:
            data = _dumps(value)
            if len(data) < PIECE_MIN_BYTES:
                return value
            digest = self._store.digest(data)
            pieces[digest] = data
            return {REF: digest}

        manifest = walk(json.loads(payload.data))
        await self._store.put(pieces, self._workflow_id)
        metadata = dict(payload.metadata)
        metadata["encoding"] = ENCODING
        return Payload(metadata=metadata, data=_dumps(manifest))

    async def _expand(self, payload: Payload) -> Payload:
        cache: dict[str, Any] = {}

        async def fetch(value: Any) -> None:
            wanted = set()

            def refs(v: Any) -> None:
                if isinstance(v, dict):
                    if set(v) == {REF}:
                        if v[REF] not in cache:
                            wanted.add(v[REF])
                        return
                    for item in (v[ESCAPED] if set(v) == {ESCAPED} else v).values():
                        refs(item)
                elif isinstance(v, list):
                    for item in v:
                        refs(item)

            refs(value)
            if wanted:
                got = await self._store.get(wanted)
                parsed = {h: json.loads(d) for h, d in got.items()}
                cache.update(parsed)
                await fetch(list(parsed.values()))

        def build(value: Any) -> Any:
            if isinstance(value, dict):
                if set(value) == {REF}:
                    return build(cache[value[REF]])
                if set(value) == {ESCAPED}:  # the payload's own look-alike, as it was
                    return {k: build(v) for k, v in value[ESCAPED].items()}
                return {k: build(v) for k, v in value.items()}
            if isinstance(value, list):
                return [build(v) for v in value]
            return value

        manifest = json.loads(payload.data)
        if ORIGINAL in payload.metadata:  # a payload stored whole
            data = (await self._store.get([manifest[WHOLE]]))[manifest[WHOLE]]
            metadata = dict(payload.metadata)
            metadata["encoding"] = metadata.pop(ORIGINAL)
            return Payload(metadata=metadata, data=data)
        await fetch(manifest)
        metadata = dict(payload.metadata)
        metadata["encoding"] = _PLAIN
        return Payload(metadata=metadata, data=_dumps(build(manifest)))


def blob_codec(settings: Settings, inner: EncryptionCodec | None) -> BlobCodec:
    """The codec of this process's data converter: one store (and cache) per settings."""
    return BlobCodec(settings, inner, threshold=settings.payload_blob_threshold_bytes)


async def forget(session: AsyncSession, workflow_ids: Sequence[str]) -> int:
    """Drop the links of deleted workflows and every piece no workflow refers to any more (the
    caller commits); the number of pieces deleted."""
    if workflow_ids:
        await session.exec(
            delete(PayloadBlobLink).where(col(PayloadBlobLink.workflow_id).in_(list(workflow_ids)))
        )
    linked = exists().where(col(PayloadBlobLink.hash) == col(PayloadBlob.hash))
    result = await session.exec(delete(PayloadBlob).where(~linked))
    return int(result.rowcount or 0)


async def prune(settings: Settings, client: Client, *, older_than: timedelta = PRUNE_AFTER) -> int:
    """Forget the pieces of workflows Temporal no longer knows (deleted, or past the namespace's
    retention), among those that first stored one more than `older_than` ago; the number of
    pieces deleted."""
    since: datetime = utcnow() - older_than
    async with session_scope(settings) as session:
        rows = await session.exec(
            select(PayloadBlobLink.workflow_id).where(col(PayloadBlobLink.created_at) < since).distinct()
        )
        candidates = list(rows.all())
    gone = []
    for workflow_id in candidates:
        try:
            await client.get_workflow_handle(workflow_id).describe()
        except RPCError as exc:
            if exc.status == RPCStatusCode.NOT_FOUND:
                gone.append(workflow_id)
    if not gone:
        return 0
    async with session_scope(settings) as session:
        deleted = await forget(session, gone)
        await session.commit()
    log.info("pruned %d payload pieces of %d workflows Temporal no longer holds", deleted, len(gone))
    return deleted


async def prune_forever(settings: Settings, client: Client, *, every: timedelta = PRUNE_EVERY) -> None:
    """`prune` now and then, for as long as the worker runs (every worker does: it is idempotent)."""
    while True:
        try:
            await prune(settings, client)
        except Exception:
            log.exception("pruning payload pieces failed; trying again later")
        await asyncio.sleep(every.total_seconds())
