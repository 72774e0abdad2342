"""Worker A of the lost-worker test, in its own process so the test can kill it outright
(SIGKILL: no graceful shutdown, nothing reported to Temporal). It polls only for the
`http_request` tool activity and prints `ready` once polling.

Run: python -m tests.activities.lost_worker_main <task queue>
"""

import asyncio
import sys

from temporalio.worker import Worker

from activities.tools.registry import TOOLS
from core.settings import get_settings
from core.temporal import connect


async def main(task_queue: str) -> None:
    client = await connect(get_settings())
    async with Worker(client, task_queue=task_queue, activities=[TOOLS["http_request"].activity]):
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
