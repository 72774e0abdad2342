"""Resume a DAG execution: the resume update on a suspended one, or a new execution that reuses
every succeeded node of a closed, failed or cancelled one.

A stored DAG's execution reruns from its `dags` row (today's spec and validation). A DAG that a
goal planned has no row: it reruns from the spec and params in its own input, the first
WorkflowExecutionStarted event of its first run (later runs carry only unfinished nodes).
"""

from collections.abc import Collection
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client
from temporalio.service import RPCError

from contracts.dag import (
    DagStatus,
    ExecutionStatus,
    NodeOutput,
    NodePatch,
    NodeStatus,
    ResumeRequest,
    RunDagInput,
)
from contracts.dag_executions import ExecutionDetail, Started
from contracts.search import GOAL_ID, RUN_KIND_DAG, search_attributes
from contracts.workflow_names import DAG_RESUME_UPDATE
from core.errors import Conflict, Invalid
from core.settings import Settings
from services import dags
from services.dag_executions import (
    EXECUTION_PREFIX,
    get_execution,
    handle_of,
    start_execution,
    start_run,
    update_then_status,
)
from services.ids import short_id
from services.node_patches import patched_spec
from services.temporal_errors import rpc_error


async def resume(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    execution_id: str,
    request: ResumeRequest | None,
) -> tuple[bool, Started | DagStatus]:
    """Resume an execution: (False, status) after the resume update on a suspended one, or
    (True, new execution) that reuses every succeeded node of a closed, failed or cancelled one."""
    detail = await get_execution(client, settings, execution_id)
    if detail.status == ExecutionStatus.suspended:
        if request is not None and request.action == "patch":
            await check_resume_patch(session, client, execution_id, request)
        return False, await _resume_suspended(client, execution_id, detail, request)
    if detail.status in (ExecutionStatus.running, ExecutionStatus.succeeded):
        raise Conflict(
            f"DAG execution {execution_id} is {detail.status}; only suspended, failed or "
            "cancelled executions can be resumed"
        )
    reuse = succeeded_outputs(detail)
    first = await first_input(client, execution_id)
    note = f"resumed from {execution_id}"
    if detail.dag_id is not None:
        started = await start_execution(
            session,
            client,
            settings,
            dag_id=detail.dag_id,
            params=first.params if first is not None else {},
            reuse_outputs=reuse,
            note=note,
        )
        return True, started
    if first is None:
        raise Conflict(f"DAG execution {execution_id} names no DAG and its input cannot be read")
    await dags.check_spec(session, first.spec, params=first.params)
    rerun = first.model_copy(update={"reuse_outputs": reuse, "carry": None, "agents": None})
    return True, await start_rerun(client, settings, execution_id, rerun, note=note)


def succeeded_outputs(detail: ExecutionDetail, *, rerun: Collection[str] = ()) -> dict[str, NodeOutput]:
    """The outputs a new execution reuses: every node that succeeded in `detail`, but `rerun`."""
    if not detail.nodes:
        raise Conflict(f"DAG execution {detail.id} did not answer its node states")
    return {
        node.id: node.node_output()
        for node in detail.nodes
        if node.status == NodeStatus.succeeded and node.id not in rerun
    }


async def start_rerun(
    client: Client,
    settings: Settings,
    execution_id: str,
    run_input: RunDagInput,
    *,
    note: str,
    memo: dict[str, str] | None = None,
) -> Started:
    """Start `run_input` (an earlier execution's, changed) as a new execution filed like that one:
    under its DAG or goal in the workflow id, the search attributes and the summary."""
    goal_id = await _goal_id(client, execution_id)
    dag_id = run_input.dag_id
    if dag_id is not None:
        prefix, label = f"{EXECUTION_PREFIX}{dag_id}", f"DAG {dag_id} ({run_input.spec.name})"
    else:
        prefix = f"{EXECUTION_PREFIX}goal{goal_id}" if goal_id else execution_id.rsplit("-", 1)[0]
        label = run_input.spec.name
    attributes = search_attributes(
        goal_id=goal_id, dag_id=str(dag_id) if dag_id is not None else None, run_kind=RUN_KIND_DAG
    )
    return await start_run(
        client,
        settings,
        run_input,
        workflow_id=f"{prefix}-{short_id()}",
        attributes=attributes,
        summary=f"{label} — {note}",
        memo=memo,
    )


async def check_resume_patch(
    session: AsyncSession, client: Client, execution_id: str, request: ResumeRequest
) -> None:
    """A resume patch goes through the checks a fork's patch and `POST /dags` go through: the
    node's new input (a tool node's whole input, an agent node's `{"prompt": ...}`) applied to
    the execution's spec, which must then validate against today's tools and agents (Invalid /
    SpecInvalid, a 422, before the workflow is asked anything)."""
    first = await first_input(client, execution_id)
    if first is None:
        raise Conflict(f"cannot patch: the input of DAG execution {execution_id} cannot be read")
    node = next((n for n in first.spec.nodes if n.id == request.node_id), None)
    if node is None:
        raise Invalid(f"cannot patch: node {request.node_id!r} is not in the DAG")
    given = request.input or {}
    try:
        change = NodePatch(input=given) if node.tool is not None else NodePatch.model_validate(given)
    except ValidationError as exc:
        messages = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
        )
        raise Invalid(
            f'cannot patch agent node {node.id!r}: {messages} (an agent node takes {{"prompt": ...}})'
        ) from None
    rerun = {node.id}
    spec = patched_spec(first.spec, {node.id: change}, rerun=rerun, from_node=node.id)
    await dags.check_spec(session, spec, params=first.params)


async def _resume_suspended(
    client: Client, execution_id: str, detail: ExecutionDetail, request: ResumeRequest | None
) -> DagStatus:
    if request is None:
        raise Conflict(
            f"DAG execution {execution_id} is suspended at node {detail.suspended_node}; "
            "send {node_id, action, input} to resume it"
        )
    return await update_then_status(client, execution_id, DAG_RESUME_UPDATE, request, doing="resume")


async def _goal_id(client: Client, execution_id: str) -> str | None:
    description = await handle_of(client, execution_id).describe()
    value = description.typed_search_attributes.get(GOAL_ID)
    return str(value) if value is not None else None


async def _started_input(client: Client, execution_id: str, run_id: str | None) -> tuple[Any, Any]:
    """(the started event's attributes, its decoded RunDagInput or None) of one run."""
    handle = client.get_workflow_handle(execution_id, run_id=run_id)
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_started_event_attributes"):
            started = event.workflow_execution_started_event_attributes
            payloads = started.input.payloads
            if not payloads:
                return started, None
            [value] = await client.data_converter.decode(payloads[:1], [RunDagInput])
            return started, value
        break
    return None, None


async def first_input(client: Client, execution_id: str) -> RunDagInput | None:
    """The input the execution started with: its first run's, as later runs carry a trimmed spec."""
    handle_of(client, execution_id)  # an id that is no DAG execution is a NotFound
    try:
        started, value = await _started_input(client, execution_id, None)
        if started is not None and started.first_execution_run_id and started.continued_execution_run_id:
            started, value = await _started_input(client, execution_id, started.first_execution_run_id)
    except RPCError as exc:
        raise rpc_error(exc, what=f"DAG execution {execution_id}") from None
    return value if isinstance(value, RunDagInput) else None
