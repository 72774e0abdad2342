"""Temporal client factory: one place that knows the address, namespace and plugins."""

import logging

from pydantic_ai.durable_exec.temporal import PydanticAIPayloadConverter, PydanticAIPlugin
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from contracts.search import SEARCH_ATTRIBUTES
from core import metrics, observability
from core.codec import codec_from_setting
from core.payload_blobs import blob_codec
from core.settings import Settings
from core.stream_polls import SharedStreamPolls

log = logging.getLogger(__name__)


def data_converter(settings: Settings) -> DataConverter:
    """pydantic-ai's payload converter with the CODEC_KEYS codec (PydanticAIPlugin keeps both), so
    payloads, summaries and failure messages are ciphertext in Temporal's store, after large
    payloads left their pieces in the database (core/payload_blobs.py)."""
    codec = codec_from_setting(settings.codec_keys.get_secret_value() if settings.codec_keys else None)
    blobs = blob_codec(settings, codec)
    if codec is None:
        return DataConverter(payload_converter_class=PydanticAIPayloadConverter, payload_codec=blobs)
    return DataConverter(
        payload_converter_class=PydanticAIPayloadConverter,
        payload_codec=blobs,
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )


async def connect(settings: Settings) -> Client:
    """A client whose data converter and plugins match the worker's, so payloads round-trip;
    its workers share its codec, its runtime (metrics) and its tracing interceptor. Stream polls
    that ask the same thing are one update (core/stream_polls.py)."""
    return await Client.connect(
        settings.temporal_target,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(settings),
        plugins=[PydanticAIPlugin()],
        interceptors=[*observability.temporal_interceptors(settings), SharedStreamPolls()],
        runtime=metrics.temporal_runtime(),
    )


async def ensure_search_attributes(client: Client, namespace: str) -> None:
    """Register goalflow's search attributes on a server that lacks them (an external cluster).

    The embedded dev server gets them on its command line; a production cluster gets them here,
    idempotently, when the worker starts.
    """
    existing = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    missing = {
        key.name: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
        for key in SEARCH_ATTRIBUTES
        if key.name not in existing.custom_attributes
    }
    if missing:
        log.info("registering search attributes %s", sorted(missing))
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
