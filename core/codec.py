"""The payload codec: prompts, outputs and tool inputs are AES-GCM ciphertext in Temporal's store.

Every client and worker encodes payloads with the newest CODEC_KEYS entry and records that key's
id in the payload metadata (`encryption-key-id`), so after a rotation (a new key put first) the
older keys still decrypt what they wrote. Payloads this codec did not write — recorded plaintext
histories, search attributes, anything before encryption was switched on — pass through as they
are. The same codec backs the API's `/api/v1/codec/encode|decode` (Temporal's remote codec
protocol) for the Web UI and `temporal ... --codec-endpoint`.
"""

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
"""The `encoding` metadata of a payload this codec wrote (the value Temporal's samples use)."""
KEY_ID = "encryption-key-id"
_NONCE_BYTES = 12


class CodecKeyError(ValueError):
    """CODEC_KEYS is malformed, or a payload names a key CODEC_KEYS does not hold."""


@dataclass(frozen=True)
class CodecKey:
    """One AES-256 key and its id; the id is derived from the key, so it cannot be mislabelled."""

    id: str
    aead: AESGCM
    digest_key: bytes = b""
    """A key derived from this one for keyed hashes (core/payload_blobs.py), never the key."""


def key_id(key: bytes) -> str:
    """A stable, non-secret id for a key (a truncated hash; it reveals nothing usable)."""
    return hashlib.sha256(b"goalflow-codec-key-id:" + key).hexdigest()[:16]


def new_codec_key() -> str:
    """A fresh key for CODEC_KEYS: 32 random bytes, URL-safe base64."""
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def parse_keys(value: str) -> list[CodecKey]:
    """CODEC_KEYS (comma-separated keys, newest first) → keys; errors never echo a key."""
    keys: list[CodecKey] = []
    for position, text in enumerate((k.strip() for k in value.split(",") if k.strip()), start=1):
        try:
            raw = base64.urlsafe_b64decode(text.encode())
        except (binascii.Error, ValueError):
            raise CodecKeyError(f"entry {position} is not URL-safe base64") from None
        if len(raw) != 32:
            raise CodecKeyError(f"entry {position} is {len(raw)} bytes, not a 32-byte AES-256 key")
        digest_key = hashlib.sha256(b"goalflow-codec-digest-key:" + raw).digest()
        keys.append(CodecKey(id=key_id(raw), aead=AESGCM(raw), digest_key=digest_key))
    if not keys:
        raise CodecKeyError("holds no key")
    return keys


class EncryptionCodec(PayloadCodec):
    """AES-GCM over each whole serialized payload (its metadata included), so neither the data
    nor its type or encoding is readable in Temporal's store."""

    def __init__(self, keys: Sequence[CodecKey]) -> None:
        super().__init__()
        if not keys:
            raise CodecKeyError("holds no key")
        self._current = keys[0]
        self._by_id = {key.id: key for key in keys}

    @property
    def digest_key(self) -> bytes:
        """The encrypting key's derived key for keyed hashes."""
        return self._current.digest_key

    @property
    def key_ids(self) -> list[str]:
        """Ids of every key that decrypts, the encrypting one first."""
        return [self._current.id, *(k for k in self._by_id if k != self._current.id)]

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Encrypt every payload with the newest key."""
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        """Decrypt ours with whichever key wrote them; pass the rest through unchanged."""
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key = self._current
        nonce = os.urandom(_NONCE_BYTES)
        # The key id is authenticated too: a payload relabelled with another id does not open.
        sealed = key.aead.encrypt(nonce, payload.SerializeToString(), key.id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key.id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        wanted = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        key = self._by_id.get(wanted)
        if key is None:
            raise CodecKeyError(f"payload was encrypted with key id {wanted!r}, which CODEC_KEYS lacks")
        data = payload.data
        try:
            plain = key.aead.decrypt(data[:_NONCE_BYTES], data[_NONCE_BYTES:], key.id.encode())
        except InvalidTag:
            raise CodecKeyError(f"payload under key id {wanted!r} does not authenticate") from None
        return Payload.FromString(plain)


def codec_from_setting(value: str | None) -> EncryptionCodec | None:
    """The codec for a CODEC_KEYS value; None when encryption is off (unset)."""
    return EncryptionCodec(parse_keys(value)) if value else None
