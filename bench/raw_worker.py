"""The "raw Temporal" baseline for tool fan-out: a hand-written workflow running the same tool
activity as regular activities with a fixed concurrency, on its own worker process(es).

Run by `bench.agent_overhead` as `python -m bench.raw_worker` with the benchmark's settings in the
environment and the task queue in `RAW_TASK_QUEUE`.
"""

import asyncio
import os
from datetime import timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from activities.tools.registry import TOOLS
    from core.settings import get_settings
    from core.temporal import connect


class RawFanOutInput(BaseModel):
    activity: str
    inputs: list[dict[str, Any]]
    parallel: int


@workflow.defn
class RawFanOutWorkflow:
    """The least a workflow can do: run one activity per input, `parallel` at a time."""

    @workflow.run
    async def run(self, params: RawFanOutInput) -> int:
        async def one(args: dict[str, Any]) -> Any:
            return await workflow.execute_activity(
                params.activity, args, start_to_close_timeout=timedelta(seconds=10)
            )

        pending = iter(params.inputs)
        running: set[asyncio.Task[Any]] = set()
        while True:
            for args in pending:
                running.add(asyncio.ensure_future(one(args)))
                if len(running) >= params.parallel:
                    break
            if not running:
                return len(params.inputs)
            _, still = await workflow.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running = set(still)


async def main() -> None:
    settings = get_settings()
    client = await connect(settings)
    worker = Worker(
        client,
        task_queue=os.environ["RAW_TASK_QUEUE"],
        workflows=[RawFanOutWorkflow],
        activities=[spec.activity for spec in TOOLS.values()],
        max_concurrent_activities=200,
    )
    await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
