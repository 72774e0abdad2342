"""Every recorded history replays with today's code; every workflow type has one; every patch has a
history from before it and one from after it, so both branches of each `workflow.patched` stay
replayable.

The histories are recorded by the replay tests of each workflow (see tests/workflows/replay.py);
one that predates a patch is kept under a `*_before_*` name when its test re-records.
"""

import ast
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from activities import loop_pause
from activities.tools import mcp_toolset
from contracts import workflow_names
from tests.workflows.replay import HISTORIES, load, replayer
from worker import WORKFLOWS
from workflows import (
    agent_runs,
    agent_test,
    dag,
    dag_launcher,
    dag_nodes,
    dag_patches,
    goal,
    scaffold_planning,
    usage,
)

ROOT = Path(__file__).resolve().parents[2]
PATCHED_CODE = [ROOT / "workflows", ROOT / "activities"]
"""Where `workflow.patched` is called: workflow code, and the activities module code that runs in
workflows (pydantic-ai capabilities and toolsets)."""

PATCH_TYPES: dict[str, set[str]] = {
    dag_nodes.NODE_ACTIVITY_IDS: {workflow_names.DAG_WORKFLOW},
    dag_patches.UP_FRONT_PATCH: {workflow_names.DAG_WORKFLOW},
    dag_patches.CALL_IDS_UP_FRONT_PATCH: {workflow_names.DAG_WORKFLOW},
    dag_launcher.LOCAL_TASK_BYTES_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.STATUS_ATTRIBUTE_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.ARCHIVE_EVENTS_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.PIN_LOCAL_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.FINAL_STATE_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.APPROVAL_DEADLINE_PATCH: {workflow_names.DAG_WORKFLOW},
    dag.BUDGET_ASK_PATCH: {workflow_names.DAG_WORKFLOW},
    goal.DEGRADE_PATCH: {workflow_names.GOAL_WORKFLOW},
    goal.SUMMARY_PATCH: {workflow_names.GOAL_WORKFLOW},
    goal.STORE_LOCAL_PATCH: {workflow_names.GOAL_WORKFLOW},
    goal.FROZEN_PLAN_PATCH: {workflow_names.GOAL_WORKFLOW},
    agent_test.ACTIVITY_ID_PATCH: {workflow_names.AGENT_TEST_WORKFLOW},
    loop_pause.LOOP_PAUSE_PATCH: {workflow_names.DAG_WORKFLOW},
    agent_runs.LOOP_STREAM_PATCH: {workflow_names.DAG_WORKFLOW},
    mcp_toolset.AGENT_CALL_IDS_PATCH: {workflow_names.DAG_WORKFLOW},
    agent_runs.ONE_ACTIVITY_PATCH: {
        workflow_names.DAG_WORKFLOW,
        workflow_names.AGENT_TEST_WORKFLOW,
        workflow_names.GOAL_WORKFLOW,
    },
    agent_runs.FALLBACKS_PATCH: {
        workflow_names.DAG_WORKFLOW,
        workflow_names.AGENT_TEST_WORKFLOW,
        workflow_names.GOAL_WORKFLOW,
    },
    scaffold_planning.SCAFFOLD_PATCH: {workflow_names.GOAL_WORKFLOW, workflow_names.PLANNER_WORKFLOW},
    usage.USAGE_PATCH: {
        workflow_names.DAG_WORKFLOW,
        workflow_names.PLANNER_WORKFLOW,
        workflow_names.AGENT_TEST_WORKFLOW,
        workflow_names.EXPERIMENT_WORKFLOW,
    },
}
"""Each patch goalflow's workflows check, and the workflow types whose histories it changes."""


def _histories() -> list[Path]:
    return sorted(HISTORIES.glob("*.json"))


def _type_of(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


async def _patches_of(history: WorkflowHistory) -> set[str]:
    """The patch ids a history's markers carry (decoded like the worker decodes them)."""
    converter = replayer(*WORKFLOWS).config()["data_converter"]
    found: set[str] = set()
    for event in history.events:
        if event.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        details = event.marker_recorded_event_attributes.details
        if "patch-data" not in details:
            continue
        [data] = await converter.decode(list(details["patch-data"].payloads), [dict])
        found.add(str(data["id"]))
    return found


def _patch_calls() -> set[str]:
    """The names passed to `workflow.patched(...)` anywhere in `PATCHED_CODE`."""
    names: set[str] = set()
    for module in (path for folder in PATCHED_CODE for path in folder.rglob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "patched"
                and node.args
                and isinstance(node.args[0], ast.Name)
                # store_call's and decide_up_front's parameters: their callers name them
                and node.args[0].id not in ("local_patch", "patch_id")
            ):
                names.add(node.args[0].id)
            if isinstance(node, ast.Call):  # store_call(..., local_patch=NAME) checks NAME
                names.update(
                    k.value.id
                    for k in node.keywords
                    if k.arg == "local_patch" and isinstance(k.value, ast.Name)
                )
    return names


@pytest.mark.parametrize("path", _histories(), ids=lambda p: p.name)
async def test_recorded_history_replays_with_current_code(path: Path) -> None:
    history = load(path)
    assert history.events[-1].event_type in (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    )
    await replayer(*WORKFLOWS).replay_workflow(history)


def test_every_workflow_type_has_a_recorded_history() -> None:
    recorded = {_type_of(load(path)) for path in _histories()}
    registered = {workflow._Definition.must_from_class(cls).name for cls in WORKFLOWS}
    assert registered - recorded == set()


def test_every_patch_in_the_code_is_listed_here() -> None:
    modules = {
        "agent_runs": agent_runs,
        "agent_test": agent_test,
        "loop_pause": loop_pause,
        "mcp_toolset": mcp_toolset,
        "dag": dag,
        "dag_launcher": dag_launcher,
        "dag_nodes": dag_nodes,
        "dag_patches": dag_patches,
        "goal": goal,
        "scaffold_planning": scaffold_planning,
        "usage": usage,
    }
    called = {getattr(m, name) for name in _patch_calls() for m in modules.values() if hasattr(m, name)}
    assert len(called) == len(_patch_calls()), "a patch constant lives in a module this test does not read"
    assert called == set(PATCH_TYPES)


async def test_every_patch_has_a_history_before_and_after_it() -> None:
    by_type: dict[str, list[set[str]]] = {}
    for path in _histories():
        history = load(path)
        by_type.setdefault(_type_of(history), []).append(await _patches_of(history))
    missing = []
    for patch, types in PATCH_TYPES.items():
        for workflow_type in sorted(types):
            seen = by_type.get(workflow_type, [])
            if not any(patch in patches for patches in seen):
                missing.append(f"{workflow_type} after {patch}")
            if not any(patch not in patches for patches in seen):
                missing.append(f"{workflow_type} before {patch}")
    assert missing == []
