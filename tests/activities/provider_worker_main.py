"""A goalflow activity worker in its own process, for the provider-limit tests: every activity
goalflow registers (pydantic-ai's model requests included), none of the workflows, at most
`max_activities` at once, on the task queue given. Prints `ready` once polling.

With two of these at `max_activities` below the number of requests a test makes, both processes
must run some of them: the limits are then seen to hold across processes, not within one.

Run: python -m tests.activities.provider_worker_main <task queue> <max activities>
"""

import asyncio
import sys

from pydantic_ai.durable_exec.temporal import AgentPlugin
from temporalio.worker import Worker

from activities.llm import goalflow_agent
from activities.provider_limits import ProviderWaitInterceptor
from core.settings import get_settings
from core.temporal import connect
from worker import ACTIVITIES


async def main(task_queue: str, max_activities: int) -> None:
    client = await connect(get_settings())
    async with Worker(
        client,
        task_queue=task_queue,
        activities=ACTIVITIES,
        max_concurrent_activities=max_activities,
        interceptors=[ProviderWaitInterceptor()],
        plugins=[AgentPlugin(goalflow_agent)],
    ):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
