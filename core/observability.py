"""Tracing (OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set) and the worker
interceptor that tells activity logs which DAG node they belong to.

Tracing: a tracer provider exporting over OTLP/HTTP, Temporal's `TracingInterceptor` on every
client (so on its workers: spans for starting workflows, running them, starting and running
activities, linked across processes through headers) and FastAPI's instrumentation on the API.
"""

import json
import logging
import re
import threading
from typing import Any

from temporalio import workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import Interceptor as ClientInterceptor
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
    StartActivityInput,
    StartLocalActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)

from core.logs import NODE_ID
from core.settings import Settings

log = logging.getLogger(__name__)

_tracing_lock = threading.Lock()
_tracing_service: str | None = None


def tracing_enabled(settings: Settings) -> bool:
    """Tracing is opt-in: only with a collector to send spans to."""
    return bool(settings.otel_exporter_otlp_endpoint)


def setup_tracing(settings: Settings, service_name: str) -> bool:
    """Install the process' tracer provider (once) when a collector is configured."""
    global _tracing_service
    if not tracing_enabled(settings):
        return False
    with _tracing_lock:
        if _tracing_service is None:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import SERVICE_NAME, Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            endpoint = str(settings.otel_exporter_otlp_endpoint).rstrip("/")
            provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
            provider.add_span_processor(
                BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"))
            )
            trace.set_tracer_provider(provider)
            _tracing_service = service_name
            log.info("tracing to %s as %s", endpoint, service_name)
    return True


def flush_traces() -> None:
    """Send every finished span now (tests, shutdown)."""
    from opentelemetry import trace

    provider: Any = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()


def temporal_interceptors(settings: Settings) -> list[ClientInterceptor]:
    """Client interceptors for `connect`: Temporal's tracing one when tracing is on."""
    if not setup_tracing(settings, _tracing_service or "goalflow"):
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def instrument_api(app: Any, settings: Settings) -> None:
    """FastAPI's OpenTelemetry instrumentation (a server span per request) when tracing is on."""
    if not setup_tracing(settings, "goalflow-api"):
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(app, excluded_urls="health,metrics")


# --- which node an activity works for ----------------------------------------------------------

NODE_HEADER = "goalflow-node-id"
_NODE_SUMMARY = re.compile(r"^node ([A-Za-z_][A-Za-z0-9_-]{0,63}): ")
"""DagWorkflow's activity summaries: `node <id>: <tool>`, `node <id>: load ...`, `... store output`."""


def _with_node(headers: Any, summary: str | None) -> Any:
    match = _NODE_SUMMARY.match(summary or "")
    if match is None:
        return headers
    node = Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(match.group(1)).encode())
    return {**headers, NODE_HEADER: node}


class _NodeOutbound(WorkflowOutboundInterceptor):
    def start_activity(self, input: StartActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_node(input.headers, input.summary)
        return super().start_activity(input)

    def start_local_activity(self, input: StartLocalActivityInput) -> workflow.ActivityHandle[Any]:
        input.headers = _with_node(input.headers, input.summary)
        return super().start_local_activity(input)


class _NodeWorkflowInbound(WorkflowInboundInterceptor):
    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_NodeOutbound(outbound))


class _NodeActivityInbound(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        header = input.headers.get(NODE_HEADER)
        if header is None:
            return await super().execute_activity(input)
        token = NODE_ID.set(json.loads(header.data))
        try:
            return await super().execute_activity(input)
        finally:
            NODE_ID.reset(token)


class NodeContextInterceptor(Interceptor):
    """Carries a DAG node's id from the workflow to its activities (a header taken from the
    activity's summary), where JSON logs report it; headers are not part of replay checks."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _NodeActivityInbound(next)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor] | None:
        return _NodeWorkflowInbound
