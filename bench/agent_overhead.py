"""Agent nodes at the speed of the model: what goalflow adds to each LLM call, and where it goes.

Run: `.venv/bin/python -m bench.agent_overhead` (also part of `make bench`; a few minutes).

Everything runs as under `make run`, each part in its own process: a Temporal dev server, a fake
OpenAI-compatible LLM whose every answer takes exactly `--latency` seconds, a fresh database
(PostgreSQL when one answers on 127.0.0.1:5432, else SQLite) and `--workers` worker processes
(`python -m worker`, the real worker). The same shapes then run through goalflow and as the same
number of requests made directly to the same fake (one shared OpenAI client, same concurrency):

- a chain of agent nodes (each prompt quotes the previous answer);
- independent agent nodes, all allowed at once (`max_parallel` = their number);
- tool fan-out: calculator nodes through DagWorkflow next to a hand-written workflow running the
  same tool as regular activities on as many worker processes of its own (`bench.raw_worker`);
- concurrent goal runs: plan (one planner request) → DAG (a calculator node and an agent node) →
  summary; directly that is three requests in a row per goal.

Prints wall times (median and spread of `--repeat` runs), ratios, overhead per node, the workers'
CPU per node, where a node's time goes (from the histories' event timestamps: workflow-task
dispatch and run, activity dispatch, a model activity's own time beyond the latency), the peak
of requests in flight at the fake, and the workers' memory after the goal runs.
"""

import argparse
import asyncio
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from openai import AsyncOpenAI
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from bench.agent_stack import FakeProcess, Workers, database, fake_llm, workers
from bench.raw_worker import RawFanOutInput, RawFanOutWorkflow
from bench.timeline import Timeline
from contracts.dag import DagSpec, NodeSpec, RunDagInput
from contracts.goals import GoalRunInput
from contracts.search import SEARCH_ATTRIBUTES, search_attributes

AGENT = "bench-agent"
PLANNER = "bench-planner"
LIMIT: dict[str, Any] = {"execution_timeout": timedelta(minutes=5)}
"""A broken run fails the bench instead of retrying its workflow task forever."""
FAST_MATCHING = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
    "--log-level",
    "error",
]
GOAL_PLAN: dict[str, Any] = {
    "name": "bench-goal",
    "nodes": [
        {"id": "calc", "tool": "calculator", "input": {"expression": "6*7"}},
        {"id": "explain", "agent": AGENT, "prompt": "Explain {{nodes.calc.output}}", "depends_on": ["calc"]},
    ],
}
GOAL_REQUESTS = 3
"""Model requests of one goal run: the plan, the `explain` node, the summary."""


@dataclass
class Row:
    shape: str
    nodes: int
    goalflow_s: list[float] = field(default_factory=list)
    baseline_s: list[float] = field(default_factory=list)
    baseline: str = "direct"
    worker_cpu_s: list[float] = field(default_factory=list)
    timeline: Timeline | None = None
    peak_in_flight: int = 0
    notes: list[str] = field(default_factory=list)
    timeline_units: int = 0
    """What the timeline's sums are divided by (nodes; goal runs for the goal shape)."""
    unit: str = "node"
    """What `nodes` counts: nodes, or model requests for the goal shape (three per goal run)."""


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


async def timed(run: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await run()
    return time.perf_counter() - began


class Bench:
    """One goalflow stack and a direct client on the same fake."""

    def __init__(
        self,
        client: Client,
        queue: str,
        fake: FakeProcess,
        pool: Workers,
        latency: float,
        profile: Path | None = None,
        keep: Path | None = None,
    ) -> None:
        self.client = client
        self.keep = keep
        self.profile = profile
        self.queue = queue
        self.fake = fake
        self.pool = pool
        self.latency = latency
        self.direct = AsyncOpenAI(api_key="bench-key", base_url=fake.base_url, max_retries=0)

    async def ask(self, model: str, prompt: str) -> str:
        """One request straight to the fake, as an application without goalflow would make it."""
        response = await self.direct.chat.completions.create(
            model=model,
            messages=[{"role": "system", "content": "You are terse."}, {"role": "user", "content": prompt}],
        )
        return response.choices[0].message.content or ""

    async def dag(self, spec: DagSpec) -> str:
        workflow_id = f"bench-dag-{uuid.uuid4().hex[:8]}"
        await self.client.execute_workflow(
            "DagWorkflow", RunDagInput(spec=spec), id=workflow_id, task_queue=self.queue, **LIMIT
        )
        return workflow_id

    async def history(self, workflow_id: str) -> Timeline:
        timeline = Timeline()
        async for execution in self.client.list_workflows(f'WorkflowId="{workflow_id}"'):
            handle = self.client.get_workflow_handle(workflow_id, run_id=execution.run_id)
            history = await handle.fetch_history()
            timeline.add(history)
            if self.keep is not None:
                self.keep.mkdir(parents=True, exist_ok=True)
                (self.keep / f"{workflow_id}-{execution.run_id}.json").write_text(history.to_json())
        return timeline

    async def measure(
        self,
        row: Row,
        goalflow: Callable[[], Awaitable[Any]],
        baseline: Callable[[], Awaitable[Any]],
        repeat: int,
    ) -> Any:
        """Alternate goalflow and baseline runs, so load from elsewhere hits both alike."""
        last: Any = None
        with profiling(self.pool, self.profile, row.shape):
            for _ in range(repeat):
                last = await self._one(row, goalflow, baseline)
        return last

    async def _one(
        self, row: Row, goalflow: Callable[[], Awaitable[Any]], baseline: Callable[[], Awaitable[Any]]
    ) -> Any:
        """One goalflow run (its wall time, the workers' CPU, the peak at the fake), then one baseline."""
        self.fake.reset()
        cpu = self.pool.cpu_seconds()
        began = time.perf_counter()
        last = await goalflow()
        row.goalflow_s.append(time.perf_counter() - began)
        row.worker_cpu_s.append(self.pool.cpu_seconds() - cpu)
        row.peak_in_flight = max(row.peak_in_flight, int(self.fake.stats()["peak_total_in_flight"]))
        row.baseline_s.append(await timed(baseline))
        return last

    async def chain(self, nodes: int, repeat: int) -> Row:
        spec = DagSpec(
            name="bench-chain",
            max_parallel=1,
            nodes=[
                NodeSpec(
                    id=f"n{i}",
                    agent=AGENT,
                    prompt=f"Step {i}." + (f" Before: {{{{nodes.n{i - 1}.output}}}}" if i else ""),
                    depends_on=[f"n{i - 1}"] if i else [],
                )
                for i in range(nodes)
            ],
        )

        async def direct() -> None:
            answer = ""
            for i in range(nodes):
                answer = await self.ask(f"fake-{AGENT}", f"Step {i}." + (f" Before: {answer}" if i else ""))

        row = Row(f"chain of {nodes} agent nodes", nodes)
        workflow_id = await self.measure(row, lambda: self.dag(spec), direct, repeat)
        row.timeline = await self.history(workflow_id)
        row.timeline_units = nodes
        return row

    async def independent(self, nodes: int, repeat: int) -> Row:
        spec = DagSpec(
            name="bench-parallel",
            max_parallel=nodes,
            nodes=[NodeSpec(id=f"n{i}", agent=AGENT, prompt=f"Question {i}.") for i in range(nodes)],
        )

        async def direct() -> None:
            await asyncio.gather(*(self.ask(f"fake-{AGENT}", f"Question {i}.") for i in range(nodes)))

        row = Row(f"{nodes} independent agent nodes", nodes)
        workflow_id = await self.measure(row, lambda: self.dag(spec), direct, repeat)
        row.timeline = await self.history(workflow_id)
        row.timeline_units = nodes
        return row

    async def fan_out(self, nodes: int, parallel: int, raw_queue: str, repeat: int) -> Row:
        inputs = [{"expression": f"{i}*7"} for i in range(nodes)]
        spec = DagSpec(
            name="bench-fan-out",
            max_parallel=parallel,
            nodes=[NodeSpec(id=f"c{i}", tool="calculator", input=args) for i, args in enumerate(inputs)],
        )

        async def raw() -> None:
            await self.client.execute_workflow(
                RawFanOutWorkflow.run,
                RawFanOutInput(activity="calculator", inputs=inputs, parallel=parallel),
                id=f"bench-raw-{uuid.uuid4().hex[:8]}",
                task_queue=raw_queue,
                **LIMIT,
            )

        row = Row(f"{nodes} calculator nodes, {parallel} parallel", nodes, baseline="raw Temporal")
        await self.measure(row, lambda: self.dag(spec), raw, repeat)
        return row

    async def goals(self, goal_ids: list[int], repeat: int, sample: int) -> Row:
        async def run_all() -> list[str]:
            ids = [f"goal-{goal_id}-{uuid.uuid4().hex[:8]}" for goal_id in goal_ids]
            handles = await asyncio.gather(
                *(
                    self.client.start_workflow(
                        "GoalWorkflow",
                        GoalRunInput(goal_id=goal_id),
                        id=workflow_id,
                        task_queue=self.queue,
                        search_attributes=search_attributes(goal_id=str(goal_id), run_kind="goal"),
                        **LIMIT,
                    )
                    for goal_id, workflow_id in zip(goal_ids, ids, strict=True)
                )
            )
            await asyncio.gather(*(handle.result() for handle in handles))
            return ids

        async def direct_one(i: int) -> None:
            await self.ask(f"fake-{PLANNER}", f"Plan goal {i}.")
            answer = await self.ask(f"fake-{AGENT}", "Explain 42")
            await self.ask("fake-bench-summarizer", f"Summarise goal {i}: {answer}")

        async def direct() -> None:
            await asyncio.gather(*(direct_one(i) for i in range(len(goal_ids))))

        row = Row(f"{len(goal_ids)} concurrent goal runs", len(goal_ids) * GOAL_REQUESTS, unit="request")
        ids = await self.measure(row, run_all, direct, repeat)
        timeline = Timeline()
        for workflow_id in ids[:sample]:
            handle = self.client.get_workflow_handle(workflow_id)
            timeline.add(await handle.fetch_history())
            result = await handle.result()
            dag = await self.history(result["dag_workflow_id"])
            for name in ("histories", "workflow_tasks", "activities", "model_activities", "local_activities"):
                setattr(timeline, name, getattr(timeline, name) + getattr(dag, name))
            timeline.wft_dispatch_ms += dag.wft_dispatch_ms
            timeline.wft_run_ms += dag.wft_run_ms
            timeline.activity_dispatch_ms += dag.activity_dispatch_ms
            timeline.events += dag.events
            timeline.model_exec_ms += dag.model_exec_ms
        row.timeline = timeline
        row.timeline_units = min(sample, len(ids))
        row.notes.append(f"breakdown per goal run over {row.timeline_units} runs (goal + DAG histories)")
        return row


def report(rows: list[Row], latency: float, workers_count: int, memory: list[tuple[float, float]]) -> str:
    lines = [
        f"fake latency {latency * 1000:.0f} ms, {workers_count} worker process(es); "
        "times in s: median (min-max)",
        "",
        "| shape | goalflow s | baseline s | goalflow / baseline | overhead per node ms "
        "| worker CPU per node ms | peak in flight |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    per_goal: list[str] = []
    for row in rows:
        gf, base = statistics.median(row.goalflow_s), statistics.median(row.baseline_s)
        cpu = 1000 * statistics.median(row.worker_cpu_s) / row.nodes
        unit = "" if row.unit == "node" else f" per {row.unit}"
        lines.append(
            f"| {row.shape} | {spread(row.goalflow_s)} | {spread(row.baseline_s)} ({row.baseline}) "
            f"| {gf / base:.2f}x | {1000 * (gf - base) / row.nodes:.1f}{unit} | {cpu:.1f}{unit} "
            f"| {row.peak_in_flight} |"
        )
        if row.unit == "request":
            spent = statistics.median(row.worker_cpu_s)
            per_goal.append(
                f"{row.shape}: worker CPU {1000 * spent / (row.nodes // GOAL_REQUESTS):.0f} ms per goal "
                f"run ({spent:.1f} s in all, on {workers_count} process(es))"
            )
    lines += ["", *per_goal] if per_goal else []
    lines += ["", "Where a node's time goes (per node, from the last run's histories):", ""]
    with_timeline = [row for row in rows if row.timeline is not None and row.timeline_units]
    keys = list(Timeline().per_node(1, 0).keys())
    lines.append("| shape | " + " | ".join(keys) + " |")
    lines.append("| --- |" + " ---: |" * len(keys))
    for row in with_timeline:
        assert row.timeline is not None
        values = row.timeline.per_node(row.timeline_units, latency * 1000)
        lines.append(f"| {row.shape} | " + " | ".join(f"{v:.1f}" for v in values.values()) + " |")
    for row in with_timeline:
        assert row.timeline is not None
        if "independent" in row.shape and row.timeline.model_starts_ms:
            t = row.timeline
            lines.append(
                f"\n{row.shape}: model activities started within {max(t.model_starts_ms):.0f} ms of the "
                f"first and finished {min(t.model_ends_ms):.0f}-{max(t.model_ends_ms):.0f} ms after it"
            )
        for note in row.notes:
            lines.append(f"{row.shape}: {note}")
    if memory:
        lines.append(
            "\nworker memory after the goal runs (MB, resident now / peak): "
            + ", ".join(f"{now:.0f} / {peak:.0f}" for now, peak in memory)
        )
    return "\n".join(lines)


@contextmanager
def profiling(pool: Workers, folder: Path | None, shape: str) -> Iterator[None]:
    """Sample every worker with py-spy (its CPU, all threads) while a shape runs; one collapsed-
    stack file per worker, for `python -m bench.profile_summary`."""
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    tag = "".join(c if c.isalnum() else "-" for c in shape)
    spies = [
        subprocess.Popen(
            ["uvx", "py-spy", "record", "--pid", str(proc.pid), "--rate", "250", "--format", "raw",
             "--output", str(folder / f"{tag}-{proc.pid}.txt")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for proc in pool.processes
    ]  # fmt: skip
    time.sleep(2)  # py-spy attaches
    try:
        yield
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(60)


@contextmanager
def settings_env(database_url: str, target: str, queue: str, artifacts: str) -> Iterator[dict[str, str]]:
    """The settings every process of the stack reads from its environment."""
    from core.crypto import new_key
    from core.settings import get_settings

    env = {
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": target,
        "TASK_QUEUE": queue,
        "API_TOKEN": secrets.token_urlsafe(24),
        "ENCRYPTION_KEYS": new_key(),
        "ARTIFACTS_DIR": artifacts,
        "LOG_LEVEL": "WARNING",
        "LLM_PROVIDER": "none",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield env
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        get_settings.cache_clear()


async def setup(fake: FakeProcess, goals: int) -> list[int]:
    """Provider, agents and goals through the API (in-process), as a person would create them."""
    from api.main import create_app
    from core.settings import get_settings

    settings = get_settings()
    assert settings.api_token is not None
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {settings.api_token.get_secret_value()}"}
    transport = httpx.ASGITransport(app=app)
    async with (
        LifespanManager(app),
        httpx.AsyncClient(transport=transport, base_url="http://api", headers=headers, timeout=60) as api,
    ):
        provider = await api.post(
            "/api/v1/providers",
            json={
                "name": "bench",
                "kind": "openai_compatible",
                "base_url": fake.base_url,
                "api_key": "bench-key",
            },
        )
        provider.raise_for_status()
        for name, model in ((AGENT, AGENT), (PLANNER, PLANNER), ("summarizer", "bench-summarizer")):
            created = await api.post(
                "/api/v1/agents",
                json={
                    "name": name,
                    "provider_id": provider.json()["id"],
                    "model": f"fake-{model}",
                    "system_prompt": "You are terse.",
                    "activate": True,
                },
            )
            created.raise_for_status()
        ids = []
        for i in range(goals):
            goal = await api.post(
                "/api/v1/goals",
                json={
                    "title": f"bench goal {i}",
                    "objective": "Compute 6*7 and explain it.",
                    "agent_name": PLANNER,
                },
            )
            goal.raise_for_status()
            ids.append(int(goal.json()["id"]))
        return ids


async def until_polled(client: Client, queue: str, count: int) -> None:
    """Wait until `count` worker processes poll the queue (each reports its own identity)."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=client.namespace,
                task_queue=TaskQueue(name=queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
            )
        )
        if len({p.identity for p in response.pollers}) >= count:
            return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"fewer than {count} workers poll {queue}")


async def run(args: argparse.Namespace, fake: FakeProcess) -> str:
    from core.launcher import migrate
    from core.settings import get_settings
    from core.temporal import connect

    env_server = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=FAST_MATCHING,
        search_attributes=SEARCH_ATTRIBUTES,
    )
    target = env_server.client.service_client.config.target_host
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    raw_queue = f"{queue}-raw"
    try:
        with (
            database() as database_url,
            tempfile.TemporaryDirectory() as artifacts,
            settings_env(database_url, target, queue, artifacts) as env,
        ):
            await asyncio.to_thread(migrate, get_settings())  # Alembic runs its own event loop
            goal_ids = await setup(fake, args.goals)
            client = await connect(get_settings())
            with (
                workers(args.workers, env) as pool,
                workers(args.workers, {**env, "RAW_TASK_QUEUE": raw_queue}, module="bench.raw_worker"),
            ):
                await until_polled(client, queue, args.workers)
                await until_polled(client, raw_queue, args.workers)
                bench = Bench(client, queue, fake, pool, args.latency, args.profile)
                warm_up = Bench(client, queue, fake, pool, args.latency)
                # Warm up every worker: sandbox imports, first workflow task of each type.
                for _ in range(2):
                    await warm_up.independent(args.parallel, 1)
                    await warm_up.goals(goal_ids[: 2 * args.workers], 1, 0)
                bench.keep = args.keep_histories
                load = os.getloadavg()
                shapes = {
                    "chain": lambda: bench.chain(args.chain, args.repeat),
                    "parallel": lambda: bench.independent(args.parallel, args.repeat),
                    "tools": lambda: bench.fan_out(args.tools, args.tool_parallel, raw_queue, args.repeat),
                    "goals": lambda: bench.goals(goal_ids, args.repeat, sample=10),
                }
                rows = [await shapes[name]() for name in args.shapes]
                memory = pool.memory_mb()
                load_after = os.getloadavg()
    finally:
        await env_server.shutdown()
    text = report(rows, args.latency, args.workers, memory)
    return text + (
        f"\nload average (1 min) before / after the measured shapes: {load[0]:.2f} / {load_after[0]:.2f} "
        f"on {os.cpu_count()} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds every fake answer takes")
    parser.add_argument("--workers", type=int, default=default_workers(), help="worker processes")
    parser.add_argument("--chain", type=int, default=10)
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--tools", type=int, default=300)
    parser.add_argument("--tool-parallel", type=int, default=32)
    parser.add_argument("--goals", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--shapes", nargs="+", default=["chain", "parallel", "tools", "goals"], help="which shapes to run"
    )
    parser.add_argument("--profile", type=Path, help="sample the workers with py-spy into this folder")
    parser.add_argument("--keep-histories", type=Path, help="write the histories read into this folder")
    args = parser.parse_args()
    with fake_llm(args.latency, GOAL_PLAN) as fake:
        print(asyncio.run(run(args, fake)))
    # The SDK's native runtime threads can abort interpreter finalization after everything has
    # shut down; the figures are printed, so leave now.
    sys.stdout.flush()
    os._exit(0)


def default_workers() -> int:
    """As many worker processes as `make run` starts by default."""
    from core.settings import Settings

    return int(Settings.model_fields["worker_processes"].default)


if __name__ == "__main__":
    main()
