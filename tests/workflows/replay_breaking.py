"""A release of DagWorkflow that cannot replay runs started before it: an extra timer first, the
edit that failed runs for good while the worker listed `Exception` among its failure types."""

from temporalio import workflow

from contracts.dag import DagResult, RunDagInput
from contracts.workflow_names import DAG_WORKFLOW
from workflows.dag import DagWorkflow


@workflow.defn(name=DAG_WORKFLOW)
class DagWorkflowWithATimerFirst(DagWorkflow):
    """DagWorkflow with a timer before everything else."""

    @workflow.run
    async def run(self, params: RunDagInput) -> DagResult:
        await workflow.sleep(0.01)
        return await super().run(params)
