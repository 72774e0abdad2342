"""DagExperimentWorkflow: one DAG across a matrix of models, as child DagWorkflows."""

import asyncio

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError

from contracts.agents import AgentSnapshot
from contracts.dag import DagResult, DagSpec, ExecutionStatus, RunDagInput
from contracts.experiments import CellResult, ExperimentCell, ExperimentInput, ExperimentResult
from contracts.search import RUN_KIND_DAG, RUN_KIND_EXPERIMENT, search_attributes
from contracts.usage import TokenUsage
from contracts.workflow_names import EXPERIMENT_WORKFLOW
from workflows.dag import DagWorkflow
from workflows.store_options import STORE_TIMEOUT
from workflows.usage import record_usage

with workflow.unsafe.imports_passed_through():
    from activities.store import resolve_agent_snapshots


def cell_agents(pinned: dict[str, AgentSnapshot], cell: ExperimentCell) -> dict[str, AgentSnapshot]:
    """The pinned agent versions with the cell's provider, model and temperature.

    Rebuilt from dicts: activity results are host-side classes, the sandbox has its own copies.
    """
    update: dict[str, object] = {"provider_id": cell.provider_id, "model": cell.model}
    if cell.temperature is not None:
        update["temperature"] = cell.temperature
    return {
        name: AgentSnapshot.model_validate({**agent.model_dump(), **update}) for name, agent in pinned.items()
    }


def _failure_message(exc: BaseException) -> str:
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, ApplicationError):
            return current.message
        current = current.cause if isinstance(current, ChildWorkflowError) else current.__cause__
    return str(exc)


@workflow.defn(name=EXPERIMENT_WORKFLOW)
class DagExperimentWorkflow:
    """Pins the DAG's agents once, then runs one child execution per matrix cell, concurrently.

    Cells run with `on_failure="fail"` (a suspended cell would hold the experiment open); a
    failed cell is a row of the table, not a failure of the experiment.
    """

    @workflow.run
    async def run(self, params: ExperimentInput) -> ExperimentResult:
        names = sorted({node.agent for node in params.spec.nodes if node.agent is not None})
        pinned: dict[str, AgentSnapshot] = {}
        if names:
            pinned = await workflow.execute_activity(
                resolve_agent_snapshots,
                names,
                start_to_close_timeout=STORE_TIMEOUT,
                summary=f"pin agents {', '.join(names)}",
            )
        spec = params.spec
        if spec.on_failure == "suspend":
            spec = spec.model_copy(update={"on_failure": "fail"})
        workflow.set_current_details(f"running {len(params.matrix)} cell(s)")
        cells = await asyncio.gather(
            *(
                self._cell(index, cell, spec=spec, params=params, pinned=pinned)
                for index, cell in enumerate(params.matrix)
            )
        )
        done = sum(1 for cell in cells if cell.status == ExecutionStatus.succeeded)
        workflow.set_current_details(f"{done}/{len(cells)} cell(s) succeeded")
        usage = sum((cell.usage for cell in cells), TokenUsage())
        await record_usage(RUN_KIND_EXPERIMENT, "succeeded", usage)
        return ExperimentResult(dag_id=params.dag_id, cells=list(cells))

    async def _cell(
        self,
        index: int,
        cell: ExperimentCell,
        *,
        spec: DagSpec,
        params: ExperimentInput,
        pinned: dict[str, AgentSnapshot],
    ) -> CellResult:
        child_id = f"{workflow.info().workflow_id}-c{index}"
        started = workflow.now()
        status = ExecutionStatus.succeeded
        error: str | None = None
        result: DagResult | None = None
        try:
            result = await workflow.execute_child_workflow(
                DagWorkflow.run,
                RunDagInput(
                    dag_id=params.dag_id,
                    spec=spec,
                    params=params.params,
                    agents=cell_agents(pinned, cell),
                ),
                id=child_id,
                search_attributes=search_attributes(dag_id=str(params.dag_id), run_kind=RUN_KIND_DAG),
                static_summary=f"experiment cell {index}: {cell.model} on provider {cell.provider_id}",
            )
        except ChildWorkflowError as exc:
            status = ExecutionStatus.failed
            error = _failure_message(exc)
        elapsed = workflow.now() - started
        usage = result.usage if result is not None else TokenUsage()
        return CellResult(
            index=index,
            cell=cell,
            execution_id=child_id,
            status=result.status if result is not None else status,
            duration_ms=int(elapsed.total_seconds() * 1000),
            usage=usage,
            total_tokens=usage.total_tokens,
            outputs=result.outputs if result is not None else {},
            error=error,
        )
