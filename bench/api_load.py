"""API load: 100 concurrent HTTP clients against the real stack, with 10,000 executions in
Temporal's visibility.

Starts `make run`'s launcher (Temporal dev server, worker, API under uvicorn) on a fresh PostgreSQL
database, starts `--executions` one-node DAG executions through `POST /execute-dag` (the "start"
figures) and waits until visibility lists every one closed, then starts `--waiting` executions
that wait for an approval (live ones). Each read is then driven by `--clients` clients, each its own
httpx client and connection, in two modes:

- paced: each client sends one request, then waits `--think` seconds (±50 %), like people and
  dashboards polling; latency here is what a caller sees at that load;
- saturated: no pause; throughput is what the stack can serve, and latency mostly queueing.

    python -m bench.api_load                         # 10,000 executions, 100 clients
    python -m bench.api_load --executions 2000 --duration 10

Everything runs on one machine: the load generator takes CPU from the stack it measures, and
the `cores busy` column says how much each part used (`others`: every other process there).
"""

import argparse
import asyncio
import os
import random
import secrets
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from temporalio.client import Client

from services.visibility import MAX_OFFSET
from tests.stack import Launcher, running_launcher

ADMIN_URL = os.environ.get("TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NOOP = {"nodes": [{"id": "x", "tool": "noop", "input": {"value": 1}}]}
GATED = {"nodes": [{"id": "gate", "tool": "noop", "requires_approval": True}]}


@contextmanager
def database() -> Iterator[str]:
    """A fresh PostgreSQL database (the launcher migrates it), dropped afterwards."""
    name = f"goalflow_load_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of a process (this one when None)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every process on the machine has used (since boot)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


@dataclass
class Sample:
    """Latencies (ms) of one operation in one mode, how long it ran, and the CPU (cores busy on
    average) of each process meanwhile."""

    name: str
    mode: str
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    cores: dict[str, float] = field(default_factory=dict)

    def absorb(self, other: "Sample") -> None:
        """Count another run of the same operation in this one (its cores stay this run's)."""
        self.latencies += other.latencies
        self.seconds += other.seconds
        for key, count in other.errors.items():
            self.errors[key] = self.errors.get(key, 0) + count

    def row(self) -> str:
        ok = sorted(self.latencies)
        if not ok:
            return f"| {self.name} | {self.mode} | 0 | - | - | - | {self.errors} |"
        p50 = statistics.median(ok)
        p99 = ok[min(len(ok) - 1, int(len(ok) * 0.99))]
        rate = len(ok) / self.seconds if self.seconds else 0.0
        failed = f" ({sum(self.errors.values())} failed: {self.errors})" if self.errors else ""
        cores = " ".join(f"{name} {used:.2f}" for name, used in self.cores.items())
        figures = f"{len(ok)} | {p50:.1f} | {p99:.1f} | {rate:.0f}{failed}"
        return f"| {self.name} | {self.mode} | {figures} | {cores} |"


Call = Callable[[httpx.AsyncClient, random.Random], Awaitable[httpx.Response | None]]


def starter(dag_id: int, into: list[str]) -> Call:
    """A call that starts an execution of `dag_id` and keeps its id in `into`."""

    async def start(http: httpx.AsyncClient, _: random.Random) -> httpx.Response:
        response = await http.post("/api/v1/execute-dag", json={"dag_id": dag_id})
        if response.status_code == 202:
            into.append(response.json()["id"])
        return response

    return start


PROCESSES: dict[str, int | None] = {"load": None}
"""Processes whose CPU each sample reports: this load generator, and the stack's (filled in)."""


async def drive(
    name: str,
    mode: str,
    clients: list[httpx.AsyncClient],
    call: Call,
    *,
    duration: float | None = None,
    total: int | None = None,
    think: float = 0.0,
) -> Sample:
    """Every client calls `call` in a loop (until `duration` passed or `total` calls were made),
    pausing `think` seconds ±50 % between calls."""
    sample = Sample(name=name, mode=mode)
    cpu_before = {name: cpu_seconds(pid) for name, pid in PROCESSES.items()}
    busy_before = machine_busy_seconds()
    started = time.perf_counter()
    remaining = [total] if total is not None else None

    async def client_loop(index: int, http: httpx.AsyncClient) -> None:
        rng = random.Random(index)
        if think:
            await asyncio.sleep(rng.uniform(0, think))  # spread the first requests out
        while True:
            if duration is not None and time.perf_counter() - started >= duration:
                return
            if remaining is not None:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            begin = time.perf_counter()
            try:
                response = await call(http, rng)
            except httpx.HTTPError as exc:
                key = type(exc).__name__
                sample.errors[key] = sample.errors.get(key, 0) + 1
            else:
                if response is not None and response.status_code >= 400:
                    key = str(response.status_code)
                    sample.errors[key] = sample.errors.get(key, 0) + 1
                else:
                    sample.latencies.append((time.perf_counter() - begin) * 1000)
            if think:
                await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    await asyncio.gather(*(client_loop(i, http) for i, http in enumerate(clients)))
    sample.seconds = time.perf_counter() - started
    sample.cores = {
        name: (cpu_seconds(pid) - cpu_before[name]) / sample.seconds for name, pid in PROCESSES.items()
    }
    busy = (machine_busy_seconds() - busy_before) / sample.seconds
    sample.cores["others"] = max(0.0, busy - sum(sample.cores.values()))
    return sample


async def wait_listed(temporal: Client, query: str, count: int, limit_s: float) -> float:
    """Seconds until visibility counts `count` workflows for `query`."""
    began = time.perf_counter()
    while (await temporal.count_workflows(query)).count < count:
        if time.perf_counter() - began > limit_s:
            raise TimeoutError(f"visibility did not reach {count} for {query!r} in {limit_s:.0f} s")
        await asyncio.sleep(1)
    return time.perf_counter() - began


async def waiting(http: httpx.AsyncClient, execution_id: str) -> None:
    """Until the execution's node waits for its approval."""
    while True:
        detail = (await http.get(f"/api/v1/dag-executions/{execution_id}")).json()
        if detail["nodes"] and detail["nodes"][0]["status"] == "waiting_approval":
            return
        await asyncio.sleep(0.2)


async def first_event(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """Open an SSE stream, read until its first event, hang up."""
    async with http.stream("GET", path) as response:
        if response.status_code == 200:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    break
        return response


async def run(stack: Launcher, token: str, args: argparse.Namespace) -> list[Sample]:
    api_url, temporal_target = stack.api_url, stack.temporal_target
    for name in ("temporal", "worker", "api"):
        PROCESSES[name] = stack.pids(name)[-1]
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    clients = [
        httpx.AsyncClient(base_url=api_url, headers=headers, timeout=120, limits=limits)
        for _ in range(args.clients)
    ]
    temporal = await Client.connect(temporal_target)
    samples: list[Sample] = []
    try:
        admin = clients[0]
        noop = (await admin.post("/api/v1/dags", json={"spec": {"name": "load-noop", **NOOP}})).json()
        gated = (await admin.post("/api/v1/dags", json={"spec": {"name": "load-gated", **GATED}})).json()
        started: list[str] = []
        start = starter(noop["id"], started)

        # Seeded in waves no larger than the worker's workflow cache (the SDK's default 1,000):
        # 10,000 started at once run at ~2 executions/s on this machine, every workflow task of
        # a workflow evicted from the cache replaying its history.
        print(f"starting {args.executions} executions with {args.clients} clients ...", flush=True)
        closed = f"DagId = '{noop['id']}' AND ExecutionStatus = 'Completed'"
        began, waited = time.perf_counter(), 0.0
        for wave_start in range(0, args.executions, args.wave):
            wave = min(args.wave, args.executions - wave_start)
            wave_sample = await drive("start (POST /execute-dag)", "saturated", clients, start, total=wave)
            if samples:
                samples[-1].absorb(wave_sample)
            else:
                samples.append(wave_sample)
            waited = await wait_listed(temporal, closed, len(started), limit_s=3600)
        print(
            f"{len(started)} executions started in {samples[-1].seconds:.0f} s of requests, in waves of "
            f"{args.wave}; all listed closed {time.perf_counter() - began:.0f} s after the first start "
            f"(the last wave {waited:.0f} s after its last start)",
            flush=True,
        )

        live: list[str] = []
        await drive("start gated", "saturated", clients, starter(gated["id"], live), total=args.waiting)
        await wait_listed(temporal, f"DagId = '{gated['id']}'", len(live), limit_s=600)
        for execution_id in live:  # until each waits for its approval
            await waiting(admin, execution_id)

        cursors: dict[int, str | None] = {}

        recent = started[-args.waiting :]
        for execution_id in recent:  # read once, so these are reads of executions read before
            await admin.get(f"/api/v1/dag-executions/{execution_id}")

        async def status_recent(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
            return await http.get(f"/api/v1/dag-executions/{rng.choice(recent)}")

        async def status_closed(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
            return await http.get(f"/api/v1/dag-executions/{rng.choice(started)}")

        async def status_live(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
            return await http.get(f"/api/v1/dag-executions/{rng.choice(live)}")

        async def list_first(http: httpx.AsyncClient, _: random.Random) -> httpx.Response:
            return await http.get("/api/v1/dag-executions", params={"limit": 50})

        async def list_walk(http: httpx.AsyncClient, _: random.Random) -> httpx.Response:
            # Each client walks the whole list page by page, and starts over at its end.
            key = id(http)
            params: dict[str, Any] = {"limit": 50, "dag_id": noop["id"]}
            if cursors.get(key):
                params["cursor"] = cursors[key]
            response = await http.get("/api/v1/dag-executions", params=params)
            cursors[key] = response.headers.get("x-next-cursor")
            return response

        async def list_deep_offset(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
            offset = rng.randrange(max(1, min(len(started), MAX_OFFSET) - 50))
            return await http.get("/api/v1/dag-executions", params={"limit": 50, "offset": offset})

        async def subscribe(http: httpx.AsyncClient, rng: random.Random) -> httpx.Response:
            return await first_event(http, f"/api/v1/dag-executions/{rng.choice(live)}/events")

        operations: list[tuple[str, Call]] = [
            ("status, waiting execution (GET /dag-executions/{id})", status_live),
            ("status, recent closed execution (read before)", status_recent),
            ("status, any closed execution (mostly a first read)", status_closed),
            ("list, first page (GET /dag-executions?limit=50)", list_first),
            ("list, every page by cursor (limit=50)", list_walk),
            ("SSE subscribe, to first event", subscribe),
            ("list, random offset up to 1,000 (limit=50)", list_deep_offset),
        ]
        for mode, think in (("paced", args.think), ("saturated", 0.0)):
            for name, call in operations:
                if mode == "saturated" and "offset" in name:
                    continue  # each request walks thousands of rows: saturated, it only queues
                cursors.clear()
                print(f"{mode}: {name} ...", flush=True)
                samples.append(await drive(name, mode, clients, call, duration=args.duration, think=think))
                print(samples[-1].row(), flush=True)
    finally:
        for http in clients:
            await http.aclose()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=10_000, help="closed executions to seed")
    parser.add_argument("--wave", type=int, default=800, help="executions started at once while seeding")
    parser.add_argument("--waiting", type=int, default=100, help="executions left waiting for approval")
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20, help="seconds per operation and mode")
    parser.add_argument("--think", type=float, default=1.0, help="paced mode: seconds between requests")
    args = parser.parse_args()
    token = secrets.token_urlsafe(24)
    with (
        database() as database_url,
        tempfile.TemporaryDirectory(prefix="goalflow-load-") as folder,
        running_launcher(Path(folder), DATABASE_URL=database_url, API_TOKEN=token) as stack,
    ):
        samples = asyncio.run(run(stack, token, args))
    print(
        f"\n{args.clients} clients, {args.executions} closed + {args.waiting} waiting executions, "
        f"{os.cpu_count()} cores; paced = {args.think:g} s ±50 % between a client's requests\n"
    )
    print("| operation | mode | requests | p50 ms | p99 ms | req/s | cores busy |")
    print("| --- | --- | ---: | ---: | ---: | ---: | --- |")
    for sample in samples:
        print(sample.row())


if __name__ == "__main__":
    main()
