"""The names goalflow's workflows (and its one standalone activity) answer to.

The API, the bot, the CLI and the services start, query, update and signal workflows by these
names, with the contract types as arguments and `result_type`s, instead of importing the workflow
classes: they sit below `workflows/` in the layers. Each workflow declares itself with the same
names, so a rename is one edit here (tests/test_layers.py checks that the worker registers them).
"""

AGENT_TASK_WORKFLOW = "AgentTaskWorkflow"
AGENT_TEST_WORKFLOW = "AgentTestWorkflow"
DAG_WORKFLOW = "DagWorkflow"
EXPERIMENT_WORKFLOW = "DagExperimentWorkflow"
GOAL_WORKFLOW = "GoalWorkflow"
MESSAGE_WORKFLOW = "MessageWorkflow"
PLANNER_WORKFLOW = "PlannerWorkflow"

DAG_STATUS_QUERY = "status"
"""DagWorkflow's status (nodes, usage) → `contracts.dag.DagStatus`."""
DAG_APPROVE_UPDATE = "approve"
DAG_REJECT_UPDATE = "reject"
DAG_ANSWER_UPDATE = "answer"
"""Validated updates deciding a node that waits for approval (`contracts.dag.ApprovalDecision`)."""
DAG_APPROVE_SIGNAL = "approve_signal"
DAG_REJECT_SIGNAL = "reject_signal"
"""The same decisions as signals, for `temporal workflow signal` and other fire-and-forget callers."""
DAG_RESUME_UPDATE = "resume"
"""Resume a suspended execution (`contracts.dag.ResumeRequest`)."""
DAG_RAISE_BUDGET_UPDATE = "raise_budget"
DAG_RAISE_BUDGET_SIGNAL = "raise_budget_signal"
"""Raise the token budget of an execution paused at it (`contracts.dag.BudgetRaise`)."""
GOAL_STEPS_QUERY = "steps"
"""GoalWorkflow's progress → `contracts.goals.GoalProgress`."""

VALIDATE_PROVIDER_ACTIVITY = "validate_provider"
"""The standalone activity `POST /providers/{id}/validate` runs → `contracts.providers.ProviderCheck`."""
