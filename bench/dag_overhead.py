"""What DagWorkflow costs per node, next to a hand-written workflow doing the same work.

Run: `.venv/bin/python -m bench.dag_overhead` (starts its own Temporal dev server; ~2 minutes).

Shapes: 1,000 independent no-op nodes and a chain of 200. Each runs through DagWorkflow (`noop`
is a local activity there) and through `BaselineWorkflow`, a minimal workflow calling the same
`noop` activity with the same concurrency, once as a regular activity (the plain way to run an
activity, and the issue's target: DAG / regular ≤ 1.2) and once as a local activity (the tightest
possible floor, so the engine's own bookkeeping shows). Prints per-node wall time and both ratios.
"""

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_ai.durable_exec.temporal import PydanticAIPlugin
from temporalio import workflow
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from contracts.dag import DagSpec, NodeSpec, RunDagInput
from contracts.search import SEARCH_ATTRIBUTES
from contracts.tools import ToolResult

with workflow.unsafe.imports_passed_through():
    from activities.tools.basic import NOOP
    from workflows.dag import DagWorkflow

LIMIT: dict[str, Any] = {"execution_timeout": timedelta(minutes=2)}
"""A broken run fails the bench instead of retrying its workflow task forever."""
FAST_MATCHING = [
    "--dynamic-config-value",
    "matching.numTaskqueueReadPartitions=1",
    "--dynamic-config-value",
    "matching.numTaskqueueWritePartitions=1",
]


class BaselineInput(BaseModel):
    nodes: int
    chain: bool
    local: bool
    parallel: int


@workflow.defn
class BaselineWorkflow:
    """The least a workflow can do to run `nodes` no-op activities in the given shape."""

    @workflow.run
    async def run(self, params: BaselineInput) -> int:
        async def one(i: int) -> ToolResult:
            if params.local:
                return await workflow.execute_local_activity(
                    "noop", {"value": i}, result_type=ToolResult, start_to_close_timeout=timedelta(seconds=10)
                )
            return await workflow.execute_activity(
                "noop", {"value": i}, result_type=ToolResult, start_to_close_timeout=timedelta(seconds=10)
            )

        if params.chain:
            for i in range(params.nodes):
                await one(i)
            return params.nodes
        pending = iter(range(params.nodes))
        running: set[asyncio.Task[ToolResult]] = set()
        while True:
            for i in pending:
                running.add(asyncio.ensure_future(one(i)))
                if len(running) >= params.parallel:
                    break
            if not running:
                return params.nodes
            _, still = await workflow.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running = set(still)


@dataclass
class Row:
    shape: str
    nodes: int
    dag_s: float
    local_s: float
    regular_s: float


def dag_spec(nodes: int, *, chain: bool, parallel: int) -> DagSpec:
    specs = [
        NodeSpec(id=f"n{i}", tool="noop", input={"value": i}, depends_on=[f"n{i - 1}"] if chain and i else [])
        for i in range(nodes)
    ]
    return DagSpec(name="bench", nodes=specs, max_parallel=parallel)


async def timed(run: Callable[[], Awaitable[Any]]) -> float:
    began = time.perf_counter()
    await run()
    return time.perf_counter() - began


async def measure(client: Client, queue: str, nodes: int, *, chain: bool, parallel: int, repeat: int) -> Row:
    def ids() -> str:
        return f"bench-{uuid.uuid4().hex[:8]}"

    async def dag() -> Any:
        spec = dag_spec(nodes, chain=chain, parallel=parallel)
        return await client.execute_workflow(
            DagWorkflow.run, RunDagInput(spec=spec, agents={}), id=ids(), task_queue=queue, **LIMIT
        )

    def baseline(local: bool) -> Callable[[], Awaitable[Any]]:
        params = BaselineInput(nodes=nodes, chain=chain, local=local, parallel=parallel)
        return lambda: client.execute_workflow(
            BaselineWorkflow.run, params, id=ids(), task_queue=queue, **LIMIT
        )

    dag_s, local_s, regular_s = [], [], []
    for _ in range(repeat):
        dag_s.append(await timed(dag))
        local_s.append(await timed(baseline(True)))
        regular_s.append(await timed(baseline(False)))
    shape = f"chain of {nodes}" if chain else f"{nodes} independent"
    median = statistics.median
    return Row(shape, nodes, median(dag_s), median(local_s), median(regular_s))


def table(rows: list[Row]) -> str:
    lines = [
        "| shape | DagWorkflow ms/node | baseline regular ms/node | baseline local ms/node "
        "| DAG / regular | DAG / local |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        per = [1000 * s / row.nodes for s in (row.dag_s, row.local_s, row.regular_s)]
        lines.append(
            f"| {row.shape} | {per[0]:.2f} | {per[2]:.2f} | {per[1]:.2f} "
            f"| {row.dag_s / row.regular_s:.2f} | {row.dag_s / row.local_s:.2f} |"
        )
    return "\n".join(lines)


async def main(*, independent: int, chain: int, parallel: int, repeat: int) -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(Path(sys.executable).parent / "temporal"),
        dev_server_extra_args=FAST_MATCHING,
        search_attributes=SEARCH_ATTRIBUTES,
        plugins=[PydanticAIPlugin()],
    )
    try:
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        async with Worker(
            env.client,
            task_queue=queue,
            workflows=[DagWorkflow, BaselineWorkflow],
            activities=[NOOP.activity],
            max_concurrent_activities=parallel,
        ):
            # Warm up: sandbox imports, the first workflow task of each type.
            await measure(env.client, queue, 20, chain=False, parallel=parallel, repeat=1)
            rows = [
                await measure(env.client, queue, independent, chain=False, parallel=parallel, repeat=repeat),
                await measure(env.client, queue, chain, chain=True, parallel=parallel, repeat=repeat),
            ]
    finally:
        await env.shutdown()
    print(table(rows))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--independent", type=int, default=1000)
    parser.add_argument("--chain", type=int, default=200)
    parser.add_argument("--parallel", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(
        main(independent=args.independent, chain=args.chain, parallel=args.parallel, repeat=args.repeat)
    )
    # The SDK's native runtime threads can abort interpreter finalization ("PyGILState_Release ...
    # must be current") after everything has shut down; the figures are printed, so leave now.
    sys.stdout.flush()
    os._exit(0)
