"""When `make run` may say "running": every part a newcomer is about to use answers, not merely
started. The API answers /health, Temporal a client, a worker polls the task queue and the local
model (when it is on) lists its model; until then the launcher says what it is still waiting for.
(The banner used to print about 20 s before the API accepted a connection.)
"""

import asyncio
import logging
from collections.abc import Callable

import httpx
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from core import local_model
from core.settings import Settings
from core.temporal import connect

log = logging.getLogger(__name__)

POLL_S = 0.5
SAY_EVERY_S = 10.0
"""How often a start that is still waiting says so again."""


def api_url(settings: Settings) -> str:
    """Where this machine reaches the API (a wildcard listen address is reached on loopback)."""
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    return f"http://{host}:{settings.api_port}"


class StackProbe:
    """Asks each part once per call; keeps one Temporal client between calls."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: Client | None = None

    async def _api(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=2, trust_env=False) as http:
                return (await http.get(f"{api_url(self.settings)}/health")).status_code == 200
        except httpx.HTTPError:
            return False

    async def _temporal(self) -> Client | None:
        if self._client is None:
            try:
                self._client = await connect(self.settings)
            except RuntimeError:
                return None
        return self._client

    async def _worker(self, client: Client | None) -> bool:
        if client is None:
            return False
        try:
            response = await client.workflow_service.describe_task_queue(
                DescribeTaskQueueRequest(
                    namespace=self.settings.temporal_namespace,
                    task_queue=TaskQueue(name=self.settings.task_queue),
                    task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                )
            )
        except Exception:  # a server still starting answers in many ways; none is a poller
            return False
        return bool(response.pollers)

    async def missing(self) -> list[str]:
        """The parts that do not answer yet, in the order a newcomer meets them."""
        client = await self._temporal()
        checks = {
            "api": self._api(),
            "worker": self._worker(client),
        }
        if self.settings.llm_provider == "local":
            checks["local model"] = local_model.answers(self.settings, timeout_s=2)
        answers = dict(zip(checks, await asyncio.gather(*checks.values()), strict=True))
        answers["temporal"] = client is not None
        return [name for name in ("temporal", "api", "worker", "local model") if answers.get(name) is False]


async def announce_when_answering(
    settings: Settings, banner: Callable[[], None], say: Callable[[str], None]
) -> None:
    """Print `banner` once every part answers; meanwhile say what is awaited (when it changes, and
    every SAY_EVERY_S). Runs until then or until cancelled (the stack stopping)."""
    probe = StackProbe(settings)
    said: list[str] = []
    loop = asyncio.get_running_loop()
    last = loop.time()
    while True:
        missing = await probe.missing()
        if not missing:
            banner()
            return
        if missing != said or loop.time() - last >= SAY_EVERY_S:
            say(f"starting — waiting for {', '.join(missing)} to answer")
            said, last = missing, loop.time()
        await asyncio.sleep(POLL_S)
