"""GoalWorkflow: one run of a goal — pin it, plan a DAG, run the DAG as a child, summarise.

The goal's agent (default `planner`) plans; the `summarizer` agent pinned with it at the start
writes the report (the goal's own agent when there is no summarizer, and the summary step says so).

Every step is visible while it happens through the `steps` query; the result lists the same
steps with token usage and the artifacts produced. A token budget (`max_tokens_per_run`) covers
planning, the DAG and the summary; crossing it fails the run with `TokenBudgetExceeded`.

A `plan: once` goal (patched, `frozen-plan`) runs its frozen plan when it has one, without
calling the planner; otherwise its first validated plan is frozen as the goal's next version.
How the run ended is counted against that version, so failures in a row can retire it
(storage/goal_plans.py has the design).
"""

import json
from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError, ChildWorkflowError, FailureError

from contracts import errors
from contracts.agents import AgentSnapshot
from contracts.dag import (
    DagResult,
    DagSpec,
    DagStatus,
    ExecutionStatus,
    NodeSpec,
    NodeState,
    NodeStatus,
    RunDagInput,
)
from contracts.goals import (
    SUMMARIZER_AGENT,
    SUMMARY_OUTPUT_CHARS,
    FrozenPlan,
    GoalProgress,
    GoalRunInput,
    GoalRunResult,
    GoalSnapshot,
    GoalStep,
    PlanMode,
    RecordUsageInput,
    SaveReportInput,
    StepStatus,
)
from contracts.planning import PLAN_INVALID, PlanFailure, PlanResult, PlanStyle
from contracts.search import search_attributes
from contracts.usage import TokenUsage
from contracts.workflow_names import GOAL_STEPS_QUERY, GOAL_WORKFLOW
from workflows.agent_runs import FALLBACKS_PATCH, ONE_ACTIVITY_PATCH, run_agent
from workflows.dag import DagWorkflow
from workflows.frozen_plans import (
    count_plan_outcome,
    freeze_plan,
    frozen_plan_detail,
    frozen_plan_result,
    load_frozen_plan,
)
from workflows.planning import plan_dag
from workflows.scaffold_planning import SCAFFOLD_PATCH
from workflows.store_options import STORE_RETRY, STORE_TIMEOUT, store_call

with workflow.unsafe.imports_passed_through():
    from activities.catalog import load_planning_catalog
    from activities.goals import (
        fetch_dag_status,
        load_goal_snapshot,
        record_run_usage,
        save_goal_report,
    )
    from activities.llm import goalflow_agent

DEGRADE_PATCH = "goal-degrade-to-single-agent-step"
"""A plan that never validates no longer fails the run: it runs as one agent step (patched so
runs recorded before it replay the old failure)."""
DEGRADED_NODE = "answer"
STORE_LOCAL_PATCH = "goal-store-local"
"""Since this patch the goal's store activities (load the goal and the planning catalog, save the
report, record usage) are local activities; histories recorded before it replay them as regular
activities."""
SUMMARY_PATCH = "goal-summary-by-summarizer"
"""The report is written by the `summarizer` agent pinned at the start, no longer by the goal's
own agent (patched so runs recorded before it replay with the goal's agent writing it)."""
FROZEN_PLAN_PATCH = "frozen-plan"
"""A `plan: once` goal loads its frozen plan (and runs it without planning) or freezes its first
validated plan, and counts each run's outcome against the version (patched: a run started
before it replays planning as it did)."""

"""Database activities: a few quick retries, then a clear failure instead of retrying forever."""


def _decide_patches_up_front() -> None:
    """Since `goal-store-local`, ask every patch a goal run consults in its first activation.

    Replay answers `workflow.patched` from the markers of the workflow task it replays; right
    after a local activity, a `steps` query answered while it ran can put the live run's next
    patch marker one task later than replay reaches it (see workflows/dag_patches.py). The first
    activation precedes every local activity, so there live and replay agree, and the SDK keeps
    each answer for the run. Histories recorded before `goal-store-local` ask where they did."""
    if workflow.patched(STORE_LOCAL_PATCH):
        for patch_id in (
            FROZEN_PLAN_PATCH,
            DEGRADE_PATCH,
            SUMMARY_PATCH,
            ONE_ACTIVITY_PATCH,
            FALLBACKS_PATCH,
            SCAFFOLD_PATCH,
        ):
            workflow.patched(patch_id)


def _fail(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message, type=kind, non_retryable=True)


def goal_prompt(goal: GoalSnapshot) -> str:
    """What the planner is asked to achieve."""
    text = f"{goal.title}\n\n{goal.objective}"
    if goal.params:
        text += "\n\nParameters (use them as {{params.<name>}}):\n" + json.dumps(
            goal.params, sort_keys=True, default=str
        )
    return text


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= SUMMARY_OUTPUT_CHARS else text[:SUMMARY_OUTPUT_CHARS] + " …"


def _node_output(result: DagResult, node: NodeState) -> Any:
    """What a node produced, as a report shows it: its output, else its preview or artifact."""
    output = result.outputs.get(node.id, node.output)
    if output is None:
        return node.output_preview or (f"(stored as artifact {node.artifact})" if node.artifact else "")
    return output


def summary_prompt(goal: GoalSnapshot, spec: DagSpec, result: DagResult) -> str:
    """Ask the summary's writer for a report from each node's (clipped) output."""
    lines = [
        f"Goal: {goal.title}",
        goal.objective,
        "",
        f"The plan {spec.name!r} ran; here is what each step produced.",
    ]
    for node in result.nodes:
        lines.append(f"\n## {node.id} ({node.status.value})\n{_clip(_node_output(result, node))}")
    lines.append("\nWrite a short report for the person who set this goal: what was done, the result.")
    return "\n".join(lines)


def steps_report(goal: GoalSnapshot, spec: DagSpec, result: DagResult) -> str:
    """The report when the summarizer runs on the embedded model: what each step produced, and
    nothing else. Asked to report a run that computed 391, SmolLM2-135M wrote "17*23 = 381" and
    "a new medication"; a short true report beats a wrong one (the first-five-minutes issue)."""
    specs = {n.id: n for n in spec.nodes}
    done = sum(1 for n in result.nodes if n.status == NodeStatus.succeeded)
    lines = [f"{goal.title}: {done} of {len(result.nodes)} step(s) succeeded."]
    for node in result.nodes:
        node_spec = specs.get(node.id)
        what = "" if node_spec is None else node_spec.tool or f"agent {node_spec.agent}"
        output = _node_output(result, node)
        if isinstance(output, dict) and {"name", "size_bytes"} <= output.keys():  # write_artifact
            output = f"saved {output['name']} ({output['size_bytes']} bytes)"
        shown = node.error if node.status == NodeStatus.failed and node.error else _clip(output)
        lines.append(f"- {node.id} ({what}, {node.status.value}): {shown}")
    return "\n".join(lines)


def _node_step(node: NodeState) -> GoalStep:
    return GoalStep(
        id=node.id,
        kind="node",
        status=StepStatus(node.status.value),
        detail=node.output_preview,
        usage=node.usage,
        artifact=node.artifact,
        error=node.error,
        started_at=node.started_at,
        finished_at=node.finished_at,
    )


@workflow.defn(name=GOAL_WORKFLOW)
class GoalWorkflow:
    """Plan → checked DAG (child workflow) → summary report, with a token budget."""

    __pydantic_ai_agents__ = [goalflow_agent]

    def __init__(self) -> None:
        self._progress = GoalProgress(goal_id=0, phase="starting")
        self._frozen: FrozenPlan | None = None
        """The frozen plan version this run executes (loaded, or stored by this run)."""

    @workflow.query(name=GOAL_STEPS_QUERY)
    def steps(self) -> GoalProgress:
        """Live progress: plan, each DAG node (as of the plan or the DAG's end), summary."""
        return self._progress

    @workflow.run
    async def run(self, params: GoalRunInput) -> GoalRunResult:
        self._progress.goal_id = params.goal_id
        _decide_patches_up_front()  # before the first local activity
        agent_name: str | None = None
        try:
            loaded = await store_call(
                load_goal_snapshot,
                params.goal_id,
                local_patch=STORE_LOCAL_PATCH,
                summary=f"load goal {params.goal_id}",
            )
            # Activity results decode into the host's classes; re-home them in the sandbox's.
            goal = GoalSnapshot.model_validate(loaded, from_attributes=True)
            agent_name = goal.agent.name
            result = await self._run(goal)
        except FailureError as exc:
            self._progress.phase = "failed"
            self._progress.error = str(exc)
            for step in self._progress.steps:
                if step.status in (StepStatus.pending, StepStatus.running):
                    step.status = StepStatus.skipped
            if self._frozen is not None:
                await count_plan_outcome(self._frozen, succeeded=False)
            await self._record("failed", params.goal_id, agent_name)
            raise
        if self._frozen is not None:
            await count_plan_outcome(self._frozen, succeeded=True)
        await self._record("succeeded", params.goal_id, agent_name)
        return result

    async def _record(
        self, status: Literal["succeeded", "failed"], goal_id: int, agent_name: str | None
    ) -> None:
        await store_call(
            record_run_usage,
            RecordUsageInput(
                workflow_id=workflow.info().workflow_id,
                run_kind="goal",
                status=status,
                usage=self._progress.usage,
                goal_id=goal_id,
                agent_name=agent_name,
            ),
            local_patch=STORE_LOCAL_PATCH,
            summary=f"record usage ({self._progress.usage.total_tokens} tokens)",
        )

    def _step(self, step_id: str) -> GoalStep:
        return next(s for s in self._progress.steps if s.id == step_id)

    def _start(self, step: GoalStep) -> None:
        step.status = StepStatus.running
        step.started_at = workflow.now()

    def _finish(self, step: GoalStep, status: StepStatus, *, error: str | None = None) -> None:
        step.status = status
        step.error = error
        step.finished_at = workflow.now()

    def _charge(self, usage: TokenUsage, budget: int | None, where: str) -> None:
        """Add usage; past the budget the run stops here with a typed, final error."""
        self._progress.usage = self._progress.usage + usage
        used = self._progress.usage.total_tokens
        if budget is not None and used > budget:
            raise _fail(
                f"token budget exceeded after {where}: {used} tokens used, budget {budget}",
                errors.TOKEN_BUDGET_EXCEEDED,
            )

    async def _plan(self, goal: GoalSnapshot) -> PlanResult:
        plan_step = GoalStep(id="plan", kind="plan", detail=f"planning with {goal.agent.name}")
        self._progress.steps = [plan_step]
        self._progress.phase = "planning"
        self._start(plan_step)
        freeze = goal.plan == PlanMode.once and workflow.patched(FROZEN_PLAN_PATCH)
        if freeze and (frozen := await load_frozen_plan(goal.id)) is not None:
            self._frozen = frozen
            plan_step.detail = frozen_plan_detail(frozen)
            self._finish(plan_step, StepStatus.succeeded)
            return frozen_plan_result(goal, frozen)
        workflow.set_current_details(f"planning with {goal.agent.name} v{goal.agent.version}")
        catalog = await store_call(
            load_planning_catalog, local_patch=STORE_LOCAL_PATCH, summary="load planning catalog"
        )
        try:
            plan = await plan_dag(goal_prompt(goal), planner=goal.agent, catalog=catalog)
        except ApplicationError as exc:
            self._finish(plan_step, StepStatus.failed, error=exc.message)
            if exc.type == PLAN_INVALID:
                plan_step.detail = "the planner produced no valid DAG"
                if workflow.patched(DEGRADE_PATCH):
                    return self._degraded_plan(goal, exc, plan_step)
            raise
        plan_step.usage = plan.usage
        plan_step.detail = f"{len(plan.spec.nodes)} node(s) in {plan.attempts} attempt(s)"
        if freeze:
            self._frozen, note = await freeze_plan(goal, plan)
            plan_step.detail += f"; {note}"
        self._finish(plan_step, StepStatus.succeeded)
        self._charge(plan.usage, goal.max_tokens_per_run, "planning")
        return plan

    def _degraded_plan(self, goal: GoalSnapshot, exc: ApplicationError, plan_step: GoalStep) -> PlanResult:
        """No valid plan after the retries: run the goal as one agent step, and say so."""
        failure = PlanFailure.model_validate(exc.details[0]) if exc.details else None
        usage = failure.usage if failure is not None else TokenUsage()
        # The goal's own agent: its provider is the one this goal is known to use.
        agent = goal.agent.name
        spec = DagSpec(
            name="single-step (no valid plan)",
            nodes=[NodeSpec(id=DEGRADED_NODE, agent=agent, prompt=goal_prompt(goal))],
        )
        problems = "; ".join(failure.problems[:5]) if failure is not None else ""
        plan_step.detail = (
            f"degraded: the planner produced no valid DAG, so the goal runs as a single {agent!r} agent step"
        )
        plan_step.error = f"{exc.message}: {problems}" if problems else exc.message
        plan_step.usage = usage
        self._charge(usage, goal.max_tokens_per_run, "planning")
        workflow.logger.warning("goal %s degraded to one agent step: %s", goal.id, plan_step.error)
        return PlanResult(
            spec=spec, attempts=failure.attempts if failure else 0, usage=usage, planner=goal.agent
        )

    async def _run_dag(self, goal: GoalSnapshot, spec: DagSpec) -> DagResult:
        self._progress.phase = "running"
        dag_id = f"dag-goal{goal.id}-{workflow.uuid4().hex[:8]}"
        # A frozen plan's runs name its stored DAG, so they list under `GET /dags/{id}/executions`.
        stored_dag = self._frozen.dag_id if self._frozen is not None else None
        self._progress.dag_workflow_id = dag_id
        workflow.set_current_details(f"running DAG {spec.name!r}: {len(spec.nodes)} node(s)")
        try:
            result = await workflow.execute_child_workflow(
                DagWorkflow.run,
                RunDagInput(
                    dag_id=stored_dag,
                    spec=spec,
                    params={**spec.params, **goal.params},
                ),
                id=dag_id,
                search_attributes=search_attributes(
                    goal_id=str(goal.id),
                    dag_id=None if stored_dag is None else str(stored_dag),
                    run_kind="dag",
                ),
                static_summary=f"Goal {goal.id} plan: {spec.name}"[:200],
            )
        except ChildWorkflowError as exc:
            cause = exc.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            message = cause.message if isinstance(cause, FailureError) else str(exc)
            final = await workflow.execute_activity(
                fetch_dag_status,
                dag_id,
                start_to_close_timeout=STORE_TIMEOUT,
                retry_policy=STORE_RETRY,
                summary=f"final state of {dag_id}",
            )
            if final is not None:
                status = DagStatus.model_validate(final, from_attributes=True)
                self._set_nodes(status.nodes)
                self._progress.usage = self._progress.usage + status.usage
            raise _fail(f"DAG {dag_id} failed: {message}", kind or errors.DAG_FAILED) from None
        self._set_nodes(result.nodes)
        if result.status != ExecutionStatus.succeeded:
            raise _fail(f"DAG {dag_id} ended {result.status.value}", errors.DAG_FAILED)
        return result

    def _set_nodes(self, nodes: list[NodeState]) -> None:
        by_id = {node.id: _node_step(node) for node in nodes}
        self._progress.steps = [by_id.get(s.id, s) if s.kind == "node" else s for s in self._progress.steps]

    @staticmethod
    def _summary_writer(goal: GoalSnapshot) -> tuple[AgentSnapshot, str | None]:
        """Who writes the report, decided as the run starts (like its planner): the `summarizer`
        pinned with the goal, else the goal's own agent with a note saying why."""
        if not workflow.patched(SUMMARY_PATCH):
            return goal.agent, None  # recorded before the summarizer wrote reports
        if goal.summarizer is None:
            note = (
                f"no active {SUMMARIZER_AGENT!r} agent, so the goal's own agent "
                f"{goal.agent.name!r} writes the report"
            )
            return goal.agent, note
        return goal.summarizer, None

    async def _run(self, goal: GoalSnapshot) -> GoalRunResult:
        budget = goal.max_tokens_per_run
        writer, fallback_note = self._summary_writer(goal)
        plan = await self._plan(goal)
        remaining = None if budget is None else budget - self._progress.usage.total_tokens
        # Unattended runs fail cleanly (resumable with /resume-dag) instead of waiting suspended.
        spec = plan.spec.model_copy(update={"max_tokens_per_run": remaining, "on_failure": "fail"})
        self._progress.steps += [GoalStep(id=n.id, kind="node") for n in spec.nodes]
        summary_step = GoalStep(
            id="summary", kind="summary", detail=fallback_note or f"report by {writer.name} v{writer.version}"
        )
        self._progress.steps.append(summary_step)

        result = await self._run_dag(goal, spec)
        self._charge(result.usage, budget, "the DAG")

        self._progress.phase = "summarising"
        self._start(summary_step)
        workflow.set_current_details(f"summarising with {writer.name} v{writer.version}")
        agent = writer
        if budget is not None:
            left = budget - self._progress.usage.total_tokens
            cap = left if agent.max_tokens is None else min(agent.max_tokens, left)
            agent = agent.model_copy(update={"max_tokens": max(cap, 1)})
        if writer is goal.summarizer and goal.summarizer_kind in PlanStyle.NATIVE_KINDS:
            # Data from the recorded snapshot decides it, so runs recorded before replay as they ran.
            text = steps_report(goal, spec, result)
            fallback_note = (
                fallback_note or "report from the step outputs (the summarizer runs on the embedded model)"
            )
        else:
            try:
                report = await run_agent(agent, summary_prompt(goal, spec, result))
            except ApplicationError as exc:
                self._finish(summary_step, StepStatus.failed, error=exc.message)
                raise
            summary_step.usage = report.usage
            self._charge(report.usage, budget, "the summary")
            text = report.output if isinstance(report.output, str) else json.dumps(report.output)
        artifact = await store_call(
            save_goal_report,
            SaveReportInput(
                goal_id=goal.id,
                workflow_id=workflow.info().workflow_id,
                title=goal.title,
                content=text,
            ),
            local_patch=STORE_LOCAL_PATCH,
            summary="save summary report",
        )
        summary_step.artifact = artifact
        summary_step.detail = (f"{fallback_note}: {text}" if fallback_note else text)[:200]
        self._finish(summary_step, StepStatus.succeeded)
        self._progress.phase = "finished"
        workflow.set_current_details(f"finished: {self._progress.usage.total_tokens} tokens")
        node_artifacts = [n.artifact for n in result.nodes if n.artifact]
        return GoalRunResult(
            goal_id=goal.id,
            title=goal.title,
            agent_name=goal.agent.name,
            agent_version=goal.agent.version,
            plan=spec,
            steps=self._progress.steps,
            usage=self._progress.usage,
            artifacts=[*node_artifacts, artifact],
            summary=text,
            dag_workflow_id=self._progress.dag_workflow_id or "",
            summary_agent_name=writer.name,
            summary_agent_version=writer.version,
            plan_version=self._frozen.version if self._frozen is not None else None,
            plan_dag_id=self._frozen.dag_id if self._frozen is not None else None,
        )
