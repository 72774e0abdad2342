"""What every replay test needs: a Replayer configured like the worker, and the recorded histories
under `tests/workflows/histories/` (re-record after a deliberate, versioned change with
`GOALFLOW_RECORD_HISTORIES=1 pytest tests/workflows/<test>.py`)."""

import json
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.codec import EncryptionCodec, codec_from_setting
from core.payload_blobs import ENCODING
from core.settings import Settings
from core.temporal import data_converter
from tests.conftest import CODEC_KEYS

HISTORIES = Path(__file__).parent / "histories"
RECORD = os.environ.get("GOALFLOW_RECORD_HISTORIES") == "1"


def replayer(*workflows: type) -> Replayer:
    """A Replayer with the worker's pydantic-ai plugin and the session's codec, so payloads decode
    as they did live (recorded plaintext histories pass through the codec unchanged). Commands it
    encodes stay inline (the largest threshold): replay compares no payloads, and a replay test run
    on its own has no database for stored pieces."""
    settings = Settings(codec_keys=CODEC_KEYS, payload_blob_threshold_bytes=2 * 1024 * 1024)
    return Replayer(
        workflows=list(workflows),
        data_converter=data_converter(settings),
        plugins=[PydanticAIPlugin()],
    )


async def replay_all(replay: Replayer, histories: Iterable[WorkflowHistory]) -> None:
    """Replay every history; fail naming each workflow that no longer replays."""

    async def each() -> AsyncIterator[WorkflowHistory]:
        for history in histories:
            yield history

    results = await replay.replay_workflows(each(), raise_on_replay_failure=False)
    assert results.replay_failures == {}


def scheduled_activities(history: WorkflowHistory) -> list[tuple[str, str]]:
    """(activity type, activity id) of every scheduled activity, in order."""
    return [
        (
            e.activity_task_scheduled_event_attributes.activity_type.name,
            e.activity_task_scheduled_event_attributes.activity_id,
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    ]


def record(path: Path, history: WorkflowHistory) -> None:
    """Keep `history` at `path` when recording was asked for, with the id it ran under (replay
    needs it where commands derive from it, such as child workflow ids), and in plaintext: the
    session's codec key is gone with the session, so a kept history must not need it."""
    if RECORD:
        codec = codec_from_setting(CODEC_KEYS)
        assert codec is not None
        for event in history.events:
            _decrypt_payloads(event, codec)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = {"workflowId": history.workflow_id, **json.loads(history.to_json())}
        path.write_text(json.dumps(kept, indent=1) + "\n")


def _decrypt_payloads(message: Message, codec: EncryptionCodec) -> None:
    """Replace every encrypted Payload under `message` (lists and maps included) by its plaintext."""
    for field, value in message.ListFields():
        kind: Any = field.message_type
        if kind is None:
            continue  # a scalar
        if kind.GetOptions().map_entry:
            if kind.fields_by_name["value"].message_type is None:
                continue  # a map of scalars
            items: list[Any] = [value[key] for key in value]
        elif isinstance(value, Message):
            items = [value]
        else:
            items = list(value)  # a repeated field
        for item in items:
            if isinstance(item, Payload):
                item.CopyFrom(codec.decrypt(item))
                # A kept history must replay without this session's database: no stored pieces.
                assert item.metadata.get("encoding") != ENCODING, "a kept history refers to stored pieces"
            else:
                _decrypt_payloads(item, codec)


def load(path: Path) -> WorkflowHistory:
    """A kept history under the workflow id it was recorded with."""
    kept = json.loads(recorded(path))
    return WorkflowHistory.from_json(kept.get("workflowId", path.stem), kept)


def recorded(path: Path) -> str:
    """A kept history's JSON; a missing one fails the test instead of passing silently."""
    if not path.exists():
        pytest.fail(f"{path} is missing: record it with GOALFLOW_RECORD_HISTORIES=1")
    return path.read_text()
