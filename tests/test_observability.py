"""What operators see: Prometheus metrics (API, worker, Temporal's runtime, tokens and cost per
model), JSON logs with workflow, run and node ids, and traces only when a collector is set."""

import asyncio
import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from prometheus_client import REGISTRY

from core import metrics, observability
from core.logs import JsonFormatter
from core.settings import Settings
from core.temporal import connect
from tests.api.dag_helpers import make_dag, start, wait_closed
from tests.conftest import ROOT, api_client
from tests.fakes.openai_server import FakeOpenAI
from tests.helpers import make_agent, make_provider
from tests.stack import free_port
from worker import build_worker

PRICED_MODEL = "gpt-4o-mini"
"""A model genai-prices knows the price of."""


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def scraped(http: httpx.AsyncClient, url: str, *needles: str, within_s: float = 30) -> str:
    """The metrics text once it shows every needle (Temporal's are drained every second)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        response = await http.get(url)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        missing = [n for n in needles if n not in response.text]
        if not missing:
            return response.text
        assert asyncio.get_running_loop().time() < deadline, f"never scraped {missing}"
        await asyncio.sleep(0.5)


async def test_metrics_endpoint_is_scraped_with_api_worker_and_temporal_runtime_metrics(
    anon: httpx.AsyncClient, settings: Settings
) -> None:
    assert (await anon.get("/metrics")).status_code == 401
    metrics.enable_temporal_metrics()  # as the worker's main does before it connects
    own = settings.model_copy(update={"task_queue": f"metrics-{uuid.uuid4().hex[:8]}"})
    async with api_client(own) as http, build_worker(await connect(own), own):
        dag = await make_dag(
            http,
            {
                "nodes": [
                    {"id": "a", "tool": "noop", "input": {"value": 1}},
                    {
                        "id": "b",
                        "tool": "write_artifact",
                        "input": {"name": f"{uuid.uuid4().hex}.md", "content": "x"},
                    },
                ]
            },
        )
        execution_id = await start(http, dag["id"])
        assert (await wait_closed(http, execution_id))["status"] == "succeeded"
        text = await scraped(
            http,
            "/metrics",
            'goalflow_http_requests_total{method="POST",route="/api/v1/execute-dag",status="202"}',
            'route="/api/v1/dag-executions/{execution_id}"',  # templates, not one series per id
            "goalflow_http_request_duration_seconds_bucket",
            "temporal_workflow_completed",  # the worker's, from Temporal's runtime
            "temporal_activity_execution_latency",
            "temporal_worker_task_slots_available",
            "temporal_request",  # the API client's calls to Temporal
        )
    assert execution_id not in text

    # The worker process serves the same registry on its own port.
    port = free_port()
    assert metrics.serve(f"127.0.0.1:{port}")
    assert not metrics.serve(f"127.0.0.1:{port}")  # taken: logged, the worker still runs
    async with httpx.AsyncClient() as plain:
        url = f"http://127.0.0.1:{port}/metrics"
        await scraped(plain, url, "temporal_workflow_completed", "goalflow_http_requests_total")


async def test_each_model_request_counts_its_tokens_and_cost_per_model() -> None:
    from pydantic_ai import Agent
    from pydantic_ai.messages import ModelResponse, TextPart
    from pydantic_ai.models.test import TestModel
    from pydantic_ai.usage import RequestUsage

    before = sample("goalflow_llm_requests_total", provider="test", model="test")
    tokens = sample("goalflow_llm_tokens_total", provider="test", model="test", direction="output")
    result = await Agent(metrics.metered(TestModel(custom_output_text="four words of output"))).run("hi")
    assert sample("goalflow_llm_requests_total", provider="test", model="test") - before == 1
    assert result.usage.output_tokens > 0
    after = sample("goalflow_llm_tokens_total", provider="test", model="test", direction="output")
    assert after - tokens == result.usage.output_tokens
    assert sample("goalflow_llm_unpriced_requests_total", provider="test", model="test") >= 1

    labels = {"provider": "openai", "model": PRICED_MODEL}
    cost = sample("goalflow_llm_cost_usd_total", **labels)
    usage = RequestUsage(input_tokens=1_000_000, output_tokens=1_000_000)
    response = ModelResponse(
        parts=[TextPart("x")], usage=usage, model_name=PRICED_MODEL, provider_name="openai"
    )
    metrics.record_model_response(response)
    # genai-prices: gpt-4o-mini is $0.15 per million input tokens and $0.60 per million output.
    assert sample("goalflow_llm_cost_usd_total", **labels) - cost == pytest.approx(0.75)


async def test_an_agent_nodes_model_requests_show_as_tokens_and_cost_per_model(
    api: httpx.AsyncClient, fake_llm: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the real path: a DAG agent node, the worker's model request, the fake provider
    (it reports 11 input and 7 output tokens per answer)."""
    monkeypatch.setattr(fake_llm, "models", [*fake_llm.models, PRICED_MODEL])
    labels = {"provider": "openai", "model": PRICED_MODEL}
    before = {
        "requests": sample("goalflow_llm_requests_total", **labels),
        "input": sample("goalflow_llm_tokens_total", direction="input", **labels),
        "output": sample("goalflow_llm_tokens_total", direction="output", **labels),
        "cost": sample("goalflow_llm_cost_usd_total", **labels),
    }
    provider = await make_provider(api, fake_llm)
    agent = await make_agent(api, provider["id"], model=PRICED_MODEL)
    dag = await make_dag(api, {"nodes": [{"id": "ask", "agent": agent["name"], "prompt": "hi"}]})
    execution_id = await start(api, dag["id"])
    assert (await wait_closed(api, execution_id))["status"] == "succeeded"
    requests = sample("goalflow_llm_requests_total", **labels) - before["requests"]
    assert requests >= 1
    assert sample("goalflow_llm_tokens_total", direction="input", **labels) - before["input"] == 11 * requests
    assert (
        sample("goalflow_llm_tokens_total", direction="output", **labels) - before["output"] == 7 * requests
    )
    assert sample("goalflow_llm_cost_usd_total", **labels) > before["cost"]
    text = (await api.get("/metrics")).text
    assert f'goalflow_llm_tokens_total{{direction="input",model="{PRICED_MODEL}",provider="openai"}}' in text


class Captured(logging.Handler):
    """JSON lines as LOG_FORMAT=json writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


async def test_json_logs_carry_workflow_run_and_node_ids(api: httpx.AsyncClient) -> None:
    captured = Captured()
    logging.getLogger().addHandler(captured)
    try:
        dag = await make_dag(
            api,
            {
                "nodes": [
                    {"id": "first", "tool": "noop", "input": {"value": 1}},
                    {
                        "id": "saved",
                        "tool": "write_artifact",
                        "input": {"name": f"{uuid.uuid4().hex}.md", "content": "x"},
                        "depends_on": ["first"],
                    },
                ]
            },
        )
        execution_id = await start(api, dag["id"])
        assert (await wait_closed(api, execution_id))["status"] == "succeeded"
    finally:
        logging.getLogger().removeHandler(captured)
    ours = [line for line in captured.lines if line.get("workflow_id") == execution_id]
    assert ours, "no log line names the execution"
    assert all(line["run_id"] and line["time"] and line["level"] for line in ours)
    nodes = {line.get("node_id") for line in ours}
    assert {"first", "saved"} <= nodes  # a local activity and a regular one
    by_node = next(line for line in ours if line.get("node_id") == "first")
    assert by_node["activity_type"] == "noop"


def test_log_format_json_writes_one_object_per_line() -> None:
    code = (
        "import logging\n"
        "from core.logs import setup_logging\n"
        "setup_logging('INFO', 'json')\n"
        "extra = {'node_id': 'n1', 'workflow_id': 'w'}\n"
        "logging.getLogger('goalflow.x').info('hello %s', 'there', extra=extra)\n"
        "logging.getLogger('goalflow.x').debug('hidden')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    [line] = [json.loads(text) for text in result.stderr.splitlines()]
    assert line["message"] == "hello there" and line["level"] == "INFO" and line["logger"] == "goalflow.x"
    assert (line["node_id"], line["workflow_id"]) == ("n1", "w")


@contextmanager
def fake_collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    """An OTLP/HTTP trace receiver on loopback that keeps every export request."""
    received: list[ExportTraceServiceRequest] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path == "/v1/traces":
                received.append(ExportTraceServiceRequest.FromString(body))
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()


def test_tracing_is_off_unless_an_endpoint_is_configured(settings: Settings) -> None:
    assert settings.otel_exporter_otlp_endpoint is None
    assert observability.temporal_interceptors(settings) == []
    assert not observability.setup_tracing(settings, "goalflow-test")


async def test_a_request_is_traced_from_the_api_through_the_workflow_to_its_activities(
    settings: Settings,
) -> None:
    with fake_collector() as (endpoint, received):
        traced = settings.model_copy(
            update={"task_queue": f"traced-{uuid.uuid4().hex[:8]}", "otel_exporter_otlp_endpoint": endpoint}
        )
        async with api_client(traced) as http, build_worker(await connect(traced), traced):
            dag = await make_dag(http, {"nodes": [{"id": "only", "tool": "noop", "input": {"value": 1}}]})
            execution_id = await start(http, dag["id"])
            assert (await wait_closed(http, execution_id))["status"] == "succeeded"
        observability.flush_traces()
        spans = [
            span
            for request in received
            for resource in request.resource_spans
            for scope in resource.scope_spans
            for span in scope.spans
        ]
    names = {span.name for span in spans}
    assert "POST /api/v1/execute-dag" in names, names  # FastAPI's server span
    assert "StartWorkflow:DagWorkflow" in names and "RunWorkflow:DagWorkflow" in names, names
    assert "RunActivity:noop" in names or "StartActivity:noop" in names, names
    by_name = {span.name: span for span in spans}
    # One trace from the HTTP request to the workflow run in the worker.
    assert by_name["RunWorkflow:DagWorkflow"].trace_id == by_name["POST /api/v1/execute-dag"].trace_id
