"""What a model request waiting for provider capacity tells the rest of the system.

The waiting activity heartbeats a `ProviderWait` (under `PROVIDER_WAIT_KEY`); the status service
reads it from the workflow's pending activities and shows the node as waiting. The Temporal Web
UI shows the same heartbeat details on the pending activity.
"""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

PROVIDER_WAIT_KEY = "goalflow_provider_wait"
WAITING_FOR_CAPACITY = "waiting for provider capacity"

Blocker = Literal["max_concurrency", "requests_per_minute", "tokens_per_minute", "queue"]


class ProviderWait(BaseModel):
    """A model request queued for a provider's capacity."""

    provider_id: int
    provider: str
    blocked_by: Blocker
    """The limit it waits for, or "queue": requests queued before it go first."""
    ahead: int = 0
    since: datetime

    def reason(self) -> str:
        """How a node waiting on this reads, e.g. "waiting for provider capacity (openai:
        requests_per_minute)"."""
        what = f"{self.ahead} queued before it" if self.blocked_by == "queue" else self.blocked_by
        return f"{WAITING_FOR_CAPACITY} ({self.provider}: {what})"

    def detail(self) -> dict[str, Any]:
        """The heartbeat detail."""
        return {PROVIDER_WAIT_KEY: self.model_dump(mode="json")}


def read_wait(detail: Any) -> ProviderWait | None:
    """The wait in a heartbeat detail, or None for any other detail."""
    if not isinstance(detail, dict) or PROVIDER_WAIT_KEY not in detail:
        return None
    try:
        return ProviderWait.model_validate(detail[PROVIDER_WAIT_KEY])
    except ValidationError:
        return None
