"""Fork a DAG execution from any node: a new execution that reruns one node and everything
downstream of it with changes (a prompt, a tool input, another agent, model or temperature) and
reuses the origin's output of every other node that succeeded there, so iterating on one step
costs that step and its dependents only.

The origin may be running or closed: its node states come from the status query (a node of a
running origin that has not finished yet simply runs in the fork). The fork runs the spec the
origin started with (its first input, see `services/dag_resume.py`), patched and validated against
today's tools and agents before anything starts, with today's active agent versions. It is filed
like its origin (DAG or goal) and carries its origin in the memo (`forked_from`,
`forked_from_node`) and in its summary, which the Web UI shows and `GET /dag-executions/{id}`
answers.
"""

from collections import deque

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client

from contracts.dag import DagSpec, ForkRequest
from contracts.dag_executions import Started
from core.errors import Conflict, Invalid
from core.settings import Settings
from services import dags
from services.dag_executions import FORKED_FROM, FORKED_FROM_NODE, get_execution
from services.dag_resume import first_input, start_rerun, succeeded_outputs
from services.node_patches import patched_spec


async def fork(
    session: AsyncSession, client: Client, settings: Settings, execution_id: str, request: ForkRequest
) -> Started:
    """Start the fork of `execution_id` described by `request`; nothing starts when the request or
    the patched spec is invalid (Invalid / SpecInvalid) or the origin cannot be read (Conflict)."""
    detail = await get_execution(client, settings, execution_id)
    first = await first_input(client, execution_id)
    if first is None:
        raise Conflict(f"cannot fork: the input of DAG execution {execution_id} cannot be read")
    rerun = downstream(first.spec, request.from_node)
    spec = patched_spec(first.spec, request.patch, rerun=rerun, from_node=request.from_node)
    await dags.check_spec(session, spec, params=first.params)
    reuse = succeeded_outputs(detail, rerun=rerun)
    run_input = first.model_copy(
        update={
            "dag_id": first.dag_id if first.dag_id is not None else detail.dag_id,
            "spec": spec,
            "reuse_outputs": reuse,
            "carry": None,
            "agents": None,
        }
    )
    return await start_rerun(
        client,
        settings,
        execution_id,
        run_input,
        note=f"forked from {execution_id} at {request.from_node}",
        memo={FORKED_FROM: execution_id, FORKED_FROM_NODE: request.from_node},
    )


def downstream(spec: DagSpec, node_id: str) -> set[str]:
    """`node_id` and every node that depends on it, directly or not."""
    dependents: dict[str, list[str]] = {node.id: [] for node in spec.nodes}
    if node_id not in dependents:
        raise Invalid(f"cannot fork: node {node_id!r} is not in the DAG")
    for node in spec.nodes:
        for dependency in node.depends_on:
            dependents.setdefault(dependency, []).append(node.id)
    found = {node_id}
    queue = deque([node_id])
    while queue:
        for child in dependents[queue.popleft()]:
            if child not in found:
                found.add(child)
                queue.append(child)
    return found
