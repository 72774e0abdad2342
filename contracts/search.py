"""Custom search attributes that make runs findable in the Web UI and `temporal workflow list`."""

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

GOAL_ID = SearchAttributeKey.for_keyword("GoalId")
DAG_ID = SearchAttributeKey.for_keyword("DagId")
AGENT_NAME = SearchAttributeKey.for_keyword("AgentName")
RUN_KIND = SearchAttributeKey.for_keyword("RunKind")
DAG_STATUS = SearchAttributeKey.for_keyword("DagStatus")
"""A DAG execution's own status (running|suspended|succeeded|failed|cancelled), upserted by
DagWorkflow whenever it changes, so every status filter is one visibility query."""

SEARCH_ATTRIBUTES = (GOAL_ID, DAG_ID, AGENT_NAME, RUN_KIND, DAG_STATUS)

RUN_KIND_DAG = "dag"
RUN_KIND_PLANNER = "planner"
RUN_KIND_AGENT_TEST = "agent-test"
RUN_KIND_EXPERIMENT = "dag-experiment"
"""`RunKind` values of DAG executions, planner runs, agent tests and experiments (goal runs and
agent tasks: `contracts.goals.RUN_KIND_GOAL`, `contracts.agent_task.RUN_KIND_TASK`); the usage
ledger that `GET /stats` sums uses the same names."""


def search_attributes(
    *,
    goal_id: str | None = None,
    dag_id: str | None = None,
    agent_name: str | None = None,
    run_kind: str,
) -> TypedSearchAttributes:
    """The attributes a goalflow workflow starts with; only the ones that apply are set."""
    pairs = [
        SearchAttributePair(key, value)
        for key, value in (
            (GOAL_ID, goal_id),
            (DAG_ID, dag_id),
            (AGENT_NAME, agent_name),
            (RUN_KIND, run_kind),
        )
        if value is not None
    ]
    return TypedSearchAttributes(pairs)
