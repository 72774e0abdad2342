"""DAG experiments: one DAG across a model matrix as one parent workflow."""

from datetime import timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from contracts.experiments import ExperimentCell, ExperimentInput, ExperimentResult
from contracts.search import RUN_KIND_EXPERIMENT, search_attributes
from contracts.workflow_names import EXPERIMENT_WORKFLOW
from core.errors import Invalid
from core.models import Provider
from core.settings import Settings
from services import dags
from services.ids import short_id
from services.temporal_errors import domain_error, rpc_error

EXPERIMENT_TIMEOUT = timedelta(minutes=30)


async def run_experiment(
    session: AsyncSession,
    client: Client,
    settings: Settings,
    *,
    dag_id: int,
    params: dict[str, Any],
    matrix: list[ExperimentCell],
) -> tuple[str, ExperimentResult]:
    """Validate the DAG and the matrix's providers, run the experiment, answer its table."""
    dag = await dags.get_dag(session, dag_id)
    spec = dag.dag_spec()
    await dags.check_spec(session, spec, params=params)
    for provider_id in sorted({cell.provider_id for cell in matrix}):
        if await session.get(Provider, provider_id) is None:
            raise Invalid(f"matrix names provider {provider_id}, which does not exist")
    workflow_id = f"dag-{dag_id}-exp-{short_id()}"
    try:
        result = await client.execute_workflow(
            EXPERIMENT_WORKFLOW,
            ExperimentInput(dag_id=dag_id, spec=spec, params={**spec.params, **params}, matrix=matrix),
            id=workflow_id,
            task_queue=settings.task_queue,
            execution_timeout=EXPERIMENT_TIMEOUT,
            search_attributes=search_attributes(dag_id=str(dag_id), run_kind=RUN_KIND_EXPERIMENT),
            static_summary=f"Experiment: DAG {dag_id} ({dag.name}) on {len(matrix)} model(s)",
            result_type=ExperimentResult,
        )
    except WorkflowFailureError as exc:
        raise domain_error(exc, workflow_id=workflow_id) from None
    except RPCError as exc:
        raise rpc_error(exc, what=f"experiment {workflow_id}") from None
    return workflow_id, result
