"""Prometheus metrics: HTTP requests (API), model requests with tokens and cost (worker), and
Temporal's own runtime metrics (task slots, polls, latencies), all in one registry per process.

Temporal's Core records into a `MetricBuffer`; `temporalio.contrib.opentelemetry.MetricsExporter`
drains it into an OpenTelemetry meter provider whose Prometheus reader registers with
prometheus_client, so `/metrics` (API) and the worker's metrics port show both kinds.
"""

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest, start_http_server
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters, StreamedResponse
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings
from temporalio.contrib.opentelemetry import MetricsExporter
from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

log = logging.getLogger(__name__)

HTTP_REQUESTS = Counter("goalflow_http_requests", "API requests answered", ["method", "route", "status"])
HTTP_SECONDS = Histogram(
    "goalflow_http_request_duration_seconds", "API request handling time", ["method", "route"]
)
LLM_REQUESTS = Counter("goalflow_llm_requests", "Model requests answered", ["provider", "model"])
LLM_TOKENS = Counter(
    "goalflow_llm_tokens", "Tokens used by model requests", ["provider", "model", "direction"]
)
LLM_COST = Counter(
    "goalflow_llm_cost_usd",
    "Cost of model requests in USD (models genai-prices knows)",
    ["provider", "model"],
)
LLM_UNPRICED = Counter(
    "goalflow_llm_unpriced_requests", "Model requests whose cost is unknown", ["provider", "model"]
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def exposition() -> bytes:
    """Every metric of this process in Prometheus' text format."""
    return generate_latest()


# --- model requests -----------------------------------------------------------------------------


def record_model_response(response: ModelResponse) -> None:
    """Count one answered model request: its tokens and, when the model's price is known, cost."""
    provider = response.provider_name or "unknown"
    model = response.model_name or "unknown"
    LLM_REQUESTS.labels(provider, model).inc()
    LLM_TOKENS.labels(provider, model, "input").inc(response.usage.input_tokens)
    LLM_TOKENS.labels(provider, model, "output").inc(response.usage.output_tokens)
    try:
        cost = float(response.cost().total_price)
    except (LookupError, ValueError, AssertionError):  # unknown model or no usage reported
        LLM_UNPRICED.labels(provider, model).inc()
        return
    LLM_COST.labels(provider, model).inc(cost)


class MeteredModel(WrapperModel):
    """A model that counts what each of its answered requests used (tokens, cost)."""

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        response = await super().request(messages, model_settings, model_request_parameters)
        record_model_response(response)
        return response

    @asynccontextmanager
    async def request_stream(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
        run_context: Any = None,
    ) -> AsyncIterator[StreamedResponse]:
        async with super().request_stream(
            messages, model_settings, model_request_parameters, run_context
        ) as stream:
            yield stream
        record_model_response(stream.get())


def metered(model: Model) -> Model:
    """`model`, counted in the LLM metrics."""
    return MeteredModel(model)


# --- HTTP ---------------------------------------------------------------------------------------

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class HttpMetrics:
    """ASGI middleware counting requests by route template (never the raw path: ids would make
    one series per execution)."""

    def __init__(self, app: Callable[[dict[str, Any], Receive, Send], Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = scope["method"]
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_SECONDS.labels(method, route).observe(time.perf_counter() - started)


# --- Temporal's runtime metrics -----------------------------------------------------------------

_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def temporal_runtime() -> Runtime | None:
    """The runtime whose metrics reach this process' registry, once `enable_temporal_metrics`
    ran; before that (CLI, launcher, tests' own servers) None, Temporal's default runtime."""
    return _runtime


def enable_temporal_metrics() -> Runtime:
    """Create (once per process) a Temporal runtime recording into a buffer, and drain it into
    the Prometheus registry from a daemon thread for the life of the process."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            buffer = MetricBuffer(100_000, MetricBufferDurationFormat.SECONDS)
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=buffer, metric_prefix="temporal_"))
            provider = MeterProvider(metric_readers=[PrometheusMetricReader()])
            exporter = MetricsExporter(buffer, provider)
            threading.Thread(
                target=lambda: asyncio.run(exporter.run()), name="temporal-metrics", daemon=True
            ).start()
        return _runtime


def serve(address: str) -> bool:
    """Serve this process' metrics at `http://<address>/metrics`; False (logged) when the port is
    taken, so a second instance on the same machine still runs, without its own metrics."""
    host, _, port = address.rpartition(":")
    try:
        start_http_server(int(port), addr=host or "127.0.0.1")
    except OSError as exc:
        log.warning("metrics not served on %s: %s", address, exc)
        return False
    log.info("metrics at http://%s/metrics", address)
    return True
