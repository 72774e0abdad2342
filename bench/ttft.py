"""Time to first token through goalflow, against the same streamed request made directly.

Run: `.venv/bin/python -m bench.ttft` (also part of `make bench`; about four minutes).

Starts `make run`'s launcher (Temporal dev server, `WORKER_PROCESSES` workers, the API under
uvicorn; `tests/stack.py`) on a fresh database (PostgreSQL when one answers on 127.0.0.1:5432, so
live events travel by NOTIFY; else SQLite, whose hub polls every 0.5 s), and a fake
OpenAI-compatible model in its own process that waits `--first-token` seconds, then writes
`--tokens` tokens `--pace` seconds apart. Then, one at a time and alternating, `--repeat` times:

- direct: the streamed chat completion straight to the fake (the openai client);
- DAG: `POST /api/v1/execute-dag` of a one-node DAG whose agent has no tools, then
  `GET /api/v1/dag-executions/{id}/events` (SSE) until `end`: the node's `node_output_delta`s;
- agent test: `POST /api/v1/agents/{id}/test` with `"stream": true` (SSE `output_delta`s).

Per side: time from the request to the first text, tokens per second between the first and the
last text (the tokens that came after the first, over that time), time to the last text; the
median (min-max), the overhead over direct and the throughput ratio. For the DAG it also prints
where the time to the first token went, from the execution's history and the first delta's row.
"""

import argparse
import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from openai import AsyncOpenAI
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.agent_stack import FakeProcess, database, fake_llm
from core.crypto import new_key
from core.settings import Settings
from tests.stack import Launcher, running_launcher

AGENT = "ttft"
MODEL = "fake-ttft"
TARGET_OVERHEAD_MS = 150.0
TARGET_RATIO = 0.9


@dataclass
class Stream:
    """One streamed answer as its client saw it (seconds from sending the request)."""

    arrivals: list[tuple[float, int]] = field(default_factory=list)
    """(when, tokens) per piece of text received."""
    text: str = ""
    seen: list[str] = field(default_factory=list)
    """The SSE events read (a failure's with its data), for a run that went wrong."""

    def add(self, at: float, text: str) -> None:
        if text:
            self.arrivals.append((at, len(text.split())))
            self.text += text

    @property
    def first_s(self) -> float:
        return self.arrivals[0][0]

    @property
    def last_s(self) -> float:
        return self.arrivals[-1][0]

    @property
    def tokens_per_s(self) -> float:
        after_first = sum(tokens for _, tokens in self.arrivals[1:])
        return after_first / (self.last_s - self.first_s)


@dataclass
class Side:
    name: str
    streams: list[Stream] = field(default_factory=list)

    def of(self, what: Callable[[Stream], float]) -> list[float]:
        return [what(s) for s in self.streams]


def spread(values: list[float], fmt: str = ".0f") -> str:
    return f"{statistics.median(values):{fmt}} ({min(values):{fmt}}-{max(values):{fmt}})"


async def sse(response: httpx.Response) -> AsyncIterator[tuple[str, Any]]:
    """(event, data) as each SSE event's blank line arrives."""
    if response.status_code != 200:
        body = (await response.aread()).decode(errors="replace")
        raise RuntimeError(f"{response.request.url.path}: HTTP {response.status_code} {body[:300]}")
    name, data = "message", ""
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            key, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if key == "event":
                name = value
            elif key == "data":
                data += value
            continue
        if data:
            yield name, json.loads(data)
        name, data = "message", ""


async def direct(client: AsyncOpenAI) -> Stream:
    """The request an application without goalflow makes: streamed, straight to the fake."""
    stream = Stream()
    began = time.perf_counter()
    chunks = await client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Write."}],
        stream=True,
    )
    async for chunk in chunks:
        if chunk.choices:
            stream.add(time.perf_counter() - began, chunk.choices[0].delta.content or "")
    return stream


async def through_dag(http: httpx.AsyncClient, dag_id: int) -> tuple[Stream, str, float]:
    """Start the one-node DAG and read its events until the end; the stream, the execution's id
    and when (epoch seconds) the start was posted."""
    began, posted = time.perf_counter(), time.time()
    response = await http.post("/api/v1/execute-dag", json={"dag_id": dag_id})
    response.raise_for_status()
    execution_id = response.json()["id"]
    stream = Stream()
    async with http.stream("GET", f"/api/v1/dag-executions/{execution_id}/events") as events:
        async for name, data in sse(events):
            stream.seen.append(name if name != "node_failed" else f"{name}: {data}")
            if name == "node_output_delta":
                stream.add(time.perf_counter() - began, data["text"])
            elif name in ("node_failed", "end"):
                break
    return stream, execution_id, posted


async def through_test(http: httpx.AsyncClient, agent_id: int) -> Stream:
    stream = Stream()
    began = time.perf_counter()
    body = {"prompt": "Write.", "stream": True}
    async with http.stream("POST", f"/api/v1/agents/{agent_id}/test", json=body) as events:
        async for name, data in sse(events):
            stream.seen.append(name if name != "error" else f"{name}: {data}")
            if name == "output_delta":
                stream.add(time.perf_counter() - began, data["text"])
            elif name in ("result", "error"):
                break
    return stream


async def first_delta_written(database_url: str, execution_id: str) -> datetime | None:
    """When the worker published the execution's first delta (the row's `created_at`)."""
    if not database_url.startswith("postgresql"):
        return None
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT created_at FROM live_event WHERE type = 'node.output_delta' "
            "AND data->>'execution_id' = %s ORDER BY id LIMIT 1",
            (execution_id,),
        )
        row = await cursor.fetchone()
    return row[0] if row else None


async def breakdown(
    temporal: Client, database_url: str, execution_id: str, posted: float, seen: float, first_token_s: float
) -> dict[str, float]:
    """Where the DAG's time to first token went (ms), from the history's event times, the first
    delta's row and the client's clock (one machine, one clock)."""
    marks: dict[str, float] = {}
    tasks = {"dispatch": 0.0, "run": 0.0, "count": 0.0}  # workflow tasks before the request
    wft: dict[int, float] = {}
    async for event in temporal.get_workflow_handle(execution_id).fetch_history_events():
        at, kind = event.event_time.ToMicroseconds() / 1e6, event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            marks.setdefault("started", at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if "agent_request" in event.activity_task_scheduled_event_attributes.activity_type.name:
                marks.setdefault("scheduled", at)
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and "scheduled" in marks:
            marks.setdefault("running", at)
        elif "scheduled" not in marks and kind == EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED:
            wft[event.event_id] = at
        elif "scheduled" not in marks and kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft[event.event_id] = at
            tasks["dispatch"] += at - wft[event.workflow_task_started_event_attributes.scheduled_event_id]
            tasks["count"] += 1
        elif "scheduled" not in marks and kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks["run"] += at - wft[event.workflow_task_completed_event_attributes.started_event_id]
    written = await first_delta_written(database_url, execution_id)
    if written is None or len(marks) < 3:
        return {}
    to_request = marks["scheduled"] - marks["started"]
    return {
        "POST → workflow started": 1000 * (marks["started"] - posted),
        "→ agent_request scheduled": 1000 * to_request,
        "   of it, workflow tasks (count)": tasks["count"],
        "   of it, workflow task dispatch": 1000 * tasks["dispatch"],
        "   of it, workflow task run (workflow code, local activities, completion)": 1000 * tasks["run"],
        "→ activity started": 1000 * (marks["running"] - marks["scheduled"]),
        "→ first delta published, less the model's first-token delay": 1000
        * (written.timestamp() - marks["running"] - first_token_s),
        "→ client reads it (commit, NOTIFY, hub, SSE)": 1000 * (seen - written.timestamp()),
    }


async def setup(http: httpx.AsyncClient, fake: FakeProcess) -> tuple[int, int]:
    """Provider, a tool-less agent on the fake and a one-node DAG, as a person creates them."""
    provider = await http.post(
        "/api/v1/providers",
        json={
            "name": "bench",
            "kind": "openai_compatible",
            "base_url": fake.base_url,
            "api_key": "bench-key",
        },
    )
    provider.raise_for_status()
    agent = await http.post(
        "/api/v1/agents",
        json={
            "name": AGENT,
            "provider_id": provider.json()["id"],
            "model": MODEL,
            "system_prompt": "You are terse.",
            "activate": True,
        },
    )
    agent.raise_for_status()
    spec = {"name": "ttft", "nodes": [{"id": "say", "agent": AGENT, "prompt": "Write."}]}
    dag = await http.post("/api/v1/dags", json={"spec": spec})
    dag.raise_for_status()
    return int(agent.json()["id"]), int(dag.json()["id"])


def check(stream: Stream, expected: str, what: str) -> None:
    """A stream that did not carry the whole answer fails the bench, saying what it carried."""
    if stream.text != expected:
        raise RuntimeError(f"{what}: text {stream.text[:60]!r}..., events {stream.seen[:20]}")


def pytest_running() -> bool:
    """Whether any pytest process runs on the machine (another engineer's tests share the cores)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if b"pytest" in (proc / "cmdline").read_bytes():
                    return True
            except OSError:
                continue
    return False


async def run(
    stack: Launcher, token: str, fake: FakeProcess, database_url: str, args: argparse.Namespace
) -> str:
    headers = {"Authorization": f"Bearer {token}"}
    temporal = await Client.connect(stack.temporal_target)
    expected = answer(args.tokens)
    sides = {name: Side(name) for name in ("direct", "DAG (execute-dag + events SSE)", "agent test (stream)")}
    parts: list[dict[str, float]] = []
    busy = False
    model = AsyncOpenAI(api_key="bench-key", base_url=fake.base_url, max_retries=0)
    async with httpx.AsyncClient(base_url=stack.api_url, headers=headers, timeout=120) as http:
        agent_id, dag_id = await setup(http, fake)

        async def dag_stream() -> Stream:
            stream, execution_id, posted = await through_dag(http, dag_id)
            check(stream, expected, execution_id)
            seen = posted + stream.first_s
            parts.append(
                await breakdown(temporal, database_url, execution_id, posted, seen, args.first_token)
            )
            return stream

        calls: list[Callable[[], Awaitable[Stream]]] = [
            lambda: direct(model),
            dag_stream,
            lambda: through_test(http, agent_id),
        ]
        for call in calls * 2:  # warm up: the first workflow of each type, the API's first stream
            check(await call(), expected, "warm-up")
        parts.clear()
        load = os.getloadavg()[0]
        for _ in range(args.repeat):
            busy = busy or pytest_running()
            for side, call in zip(sides.values(), calls, strict=True):
                stream = await call()
                check(stream, expected, side.name)
                side.streams.append(stream)
        load_after = os.getloadavg()[0]
    conditions = (
        f"load average (1 min) before / after: {load:.2f} / {load_after:.2f} on {os.cpu_count()} cores; "
        f"pytest running meanwhile: {'yes' if busy else 'no'}"
    )
    return report(list(sides.values()), parts, args, database_url, conditions)


def report(
    sides: list[Side],
    parts: list[dict[str, float]],
    args: argparse.Namespace,
    database_url: str,
    conditions: str,
) -> str:
    base = sides[0]
    base_first = statistics.median(base.of(lambda s: s.first_s))
    base_rate = statistics.median(base.of(lambda s: s.tokens_per_s))
    lines = [
        f"fake: first token after {args.first_token * 1000:.0f} ms, {args.tokens} tokens "
        f"{args.pace * 1000:.0f} ms apart; {args.repeat} streams per side; "
        f"database: {database_url.split(':', 1)[0]}",
        conditions,
        "",
        "| side | first token ms | overhead ms | tokens/s | / direct | last token ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for side in sides:
        first = statistics.median(side.of(lambda s: s.first_s))
        rate = statistics.median(side.of(lambda s: s.tokens_per_s))
        lines.append(
            f"| {side.name} | {spread([1000 * v for v in side.of(lambda s: s.first_s)])} "
            f"| {1000 * (first - base_first):.0f} | {spread(side.of(lambda s: s.tokens_per_s), '.1f')} "
            f"| {rate / base_rate:.2f} | {spread([1000 * v for v in side.of(lambda s: s.last_s)])} |"
        )
    for side in sides[1:]:
        overhead = 1000 * (statistics.median(side.of(lambda s: s.first_s)) - base_first)
        ratio = statistics.median(side.of(lambda s: s.tokens_per_s)) / base_rate
        ok = overhead < TARGET_OVERHEAD_MS and ratio >= TARGET_RATIO
        lines.append(
            f"\n{side.name}: overhead {overhead:.0f} ms (target < {TARGET_OVERHEAD_MS:.0f}), "
            f"throughput {ratio:.2f}x direct (target >= {TARGET_RATIO}): {'met' if ok else 'NOT met'}"
        )
    parts = [p for p in parts if p]
    if parts:
        lines += ["", f"DAG, where the time to first token went (ms, median (min-max) of {len(parts)}):", ""]
        lines += [f"- {key}: {spread([p[key] for p in parts], '.1f')}" for key in parts[0]]
    return "\n".join(lines)


def answer(tokens: int) -> str:
    """What the fake writes: `tokens` words, one streamed chunk each."""
    return " ".join(f"t{i:03d}" for i in range(tokens))


def says(text: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def handle(_body: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": text}

    return handle


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--first-token", type=float, default=0.3, help="seconds before the fake's first token"
    )
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between the fake's tokens")
    parser.add_argument("--repeat", type=int, default=10, help="streams per side")
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    workers = str(Settings.model_fields["worker_processes"].default)  # as many as `make run` starts
    with (
        fake_llm(args.first_token, {}, handler=says(answer(args.tokens)), paces={MODEL: args.pace}) as fake,
        database() as database_url,
        tempfile.TemporaryDirectory(prefix="goalflow-ttft-") as folder,
        running_launcher(
            Path(folder),
            DATABASE_URL=database_url,
            API_TOKEN=token,
            ENCRYPTION_KEYS=new_key(),
            WORKER_PROCESSES=workers,
        ) as stack,
    ):
        print(asyncio.run(run(stack, token, fake, database_url, args)), flush=True)


if __name__ == "__main__":
    main()
