"""Every patch DagWorkflow consults is decided in the first activation of each run.

Replay answers `workflow.patched(id)` from the markers of the workflow task being replayed (Core
looks ahead only to the end of that task), so a patch is safe to ask only where live execution and
replay are in the same task. Right after a local activity resolves they may not be: when a status
query is answered while a local node runs, the query's task completion carries the node's marker
but the workflow sees the result only in the next task (Core forces one). On replay the marker
resolves the node in the earlier task, the workflow reaches its next `patched` call there, before
that patch's marker, gets False and fails: "patch marker encountered for change record-usage, but
there is no corresponding change command". A DAG execution reaches `record-usage` (closing),
`dag-archive-events-before-trim` (continue-as-new), the approval, budget and node patches right
after local nodes.

The first activation of a run happens before any local activity is scheduled, so a patch asked
there lands in the first task live and on replay. The SDK memoizes each answer per run: later
calls cost nothing and record nothing. Histories recorded before `UP_FRONT_PATCH` keep asking
each patch where they did.
"""

from temporalio import workflow

from workflows.agent_runs import FALLBACKS_PATCH, LOOP_STREAM_PATCH, ONE_ACTIVITY_PATCH
from workflows.dag_graph import APPROVAL_DEADLINE_PATCH, BUDGET_ASK_PATCH
from workflows.dag_launcher import LOCAL_TASK_BYTES_PATCH
from workflows.dag_nodes import NODE_ACTIVITY_IDS
from workflows.usage import USAGE_PATCH

with workflow.unsafe.imports_passed_through():
    from activities.loop_pause import LOOP_PAUSE_PATCH
    from activities.tools.mcp_toolset import AGENT_CALL_IDS_PATCH

UP_FRONT_PATCH = "dag-patches-up-front"
"""Since this patch DagWorkflow decides every patch it consults in the first activation of a run."""

HELPER_PATCHES = (
    APPROVAL_DEADLINE_PATCH,
    BUDGET_ASK_PATCH,
    LOCAL_TASK_BYTES_PATCH,
    NODE_ACTIVITY_IDS,
    ONE_ACTIVITY_PATCH,
    FALLBACKS_PATCH,
    USAGE_PATCH,
    LOOP_PAUSE_PATCH,
    LOOP_STREAM_PATCH,
)
"""The patches of the modules DagWorkflow schedules, runs and closes nodes with. A new patch that
DagWorkflow or anything it calls consults goes here (or in the workflow's own list): the test in
tests/workflows/test_usage_marker_queries.py checks that a new run's first task decides them all."""


CALL_IDS_UP_FRONT_PATCH = "dag-patches-up-front-mcp-call-ids"
"""Since this patch `AGENT_CALL_IDS_PATCH` is decided up front too. It shipped asked where an agent
node's first MCP call happens, so histories from before this patch keep asking it there (deciding
it up front on their replay would answer False and then meet its marker)."""


def decide_up_front(*own: str) -> None:
    """Ask `own` and `HELPER_PATCHES` now (first thing in `run`), unless the history predates this."""
    if not workflow.patched(UP_FRONT_PATCH):
        return
    for patch_id in (*own, *HELPER_PATCHES):
        workflow.patched(patch_id)
    if workflow.patched(CALL_IDS_UP_FRONT_PATCH):
        workflow.patched(AGENT_CALL_IDS_PATCH)
