"""Tracing: OpenTelemetry, off unless OTEL_EXPORTER_OTLP_ENDPOINT is set.

When set: a tracer provider exporting over OTLP/HTTP, Temporal's `TracingInterceptor` on every
client (so on its workers: spans for starting workflows, running them, starting and running
activities, linked across processes through headers) and FastAPI's instrumentation on the API.
"""

import logging
import threading
from typing import Any

from temporalio.client import Interceptor as ClientInterceptor

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
