"""Write a closed DAG execution run's final state where the API reads it (storage/final_states.py)."""

from temporalio import activity

from contracts.dag import FinalStateInput
from core.db import session_scope
from core.settings import get_settings
from storage import final_states


@activity.defn
async def save_final_state(data: FinalStateInput) -> None:
    """One upsert keyed by (workflow id, run id): safe to run again."""
    async with session_scope(get_settings()) as session:
        await final_states.save(session, data)
        await session.commit()
