"""Chat-intake side effects for MessageWorkflow: pin the agents, record progress, store results.

Each write publishes its real-time event in the same transaction (core/events.py), so a client
on `/ws` hears of a change exactly when it is visible in the database.
"""

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.store import resolve_agent_snapshots
from contracts.intake import IntakeAgents, MessageProgress, StoreAnalysisInput
from contracts.planning import PlanStyle
from core.db import session_scope
from core.events import MESSAGE_CLASSIFIED, RUN_PROGRESS, TASK_CREATED, publish
from core.models import Message, MessageStatus, Provider, TodoTask
from core.models.common import utcnow
from core.models.message import message_event_data
from core.models.todo import task_event_data
from core.settings import get_settings

MESSAGE_NOT_FOUND = "MessageNotFound"
MISSING_MESSAGE_ATTEMPTS = 5


@activity.defn
async def pin_intake_agents(names: list[str]) -> IntakeAgents:
    """The active classifier and extractor versions (in that order), and which of them answer in
    native JSON-schema mode (the local model) rather than through an output tool."""
    classifier, extractor = names
    pinned = await resolve_agent_snapshots(names)
    async with session_scope(get_settings()) as session:
        ids = {agent.provider_id for agent in pinned.values()}
        kinds = dict(
            (await session.exec(select(Provider.id, Provider.kind).where(col(Provider.id).in_(ids)))).all()
        )
    native = [
        name for name, agent in pinned.items() if str(kinds.get(agent.provider_id)) in PlanStyle.NATIVE_KINDS
    ]
    return IntakeAgents(classifier=pinned[classifier], extractor=pinned[extractor], native=sorted(native))


async def _message(session: AsyncSession, message_id: int) -> Message:
    message = await session.get(Message, message_id)
    if message is None:
        # The API commits the row just after starting the workflow: a few attempts, then final.
        raise ApplicationError(
            f"message {message_id} does not exist",
            type=MESSAGE_NOT_FOUND,
            non_retryable=activity.info().attempt >= MISSING_MESSAGE_ATTEMPTS,
        )
    return message


@activity.defn
async def update_message_progress(progress: MessageProgress) -> None:
    """Record a step on the message (pending with a reason while waiting, failed with the reason)
    and announce it as `run.progress`."""
    async with session_scope(get_settings()) as session:
        message = await _message(session, progress.message_id)
        if message.status == MessageStatus.classified:
            return  # a late retry of an earlier step; the outcome stands
        message.status = (MessageStatus.failed if progress.stage == "failed" else MessageStatus.pending).value
        message.status_reason = progress.reason
        if progress.stage == "failed":
            message.processed_at = utcnow()
        session.add(message)
        await publish(session, RUN_PROGRESS, progress.model_dump(mode="json"))
        await session.commit()


@activity.defn
async def store_message_analysis(params: StoreAnalysisInput) -> int | None:
    """Store the classification and entities and, for a task, create its task, in one transaction
    (a message is never seen classified without the task it became); returns the task id.
    Idempotent: a retry finds the message classified and its task (unique by message)."""
    analysis = params.analysis
    async with session_scope(get_settings()) as session:
        message = await _message(session, analysis.message_id)
        task = (await session.exec(select(TodoTask).where(TodoTask.message_id == message.id))).first()
        if message.status == MessageStatus.classified and (task is not None or params.task is None):
            return task.id if task is not None else None
        classification = analysis.classification
        message.status = MessageStatus.classified.value
        message.status_reason = None
        message.category = classification.category.value
        message.urgency = classification.urgency.value
        message.is_task = classification.is_task
        message.title = classification.title
        message.entities = analysis.entities.model_dump(mode="json")
        message.classifier_version = analysis.classifier_version
        message.extractor_version = analysis.extractor_version
        message.processed_at = utcnow()
        session.add(message)
        created = False
        if params.task is not None and task is None:
            task = TodoTask.model_validate(params.task.model_dump())
            session.add(task)
            await session.flush()
            await session.refresh(task)  # as stored (times in UTC), as every later answer has it
            created = True
        await publish(
            session,
            MESSAGE_CLASSIFIED,
            {"message": message_event_data(message, task_id=task.id if task else None)},
        )
        if created and task is not None:
            await publish(session, TASK_CREATED, {"task": task_event_data(task)})
        try:
            await session.commit()
        except IntegrityError:  # a concurrent attempt made the task first; a retry finds it
            await session.rollback()
            raise
        return task.id if task is not None else None
