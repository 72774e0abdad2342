"""workflows/plan_scaffold.py: which steps and inputs a goal's own words give the embedded planner
(pure: no model, no Temporal), and contracts/tool_checks.py: what a tool input must be."""

from typing import Any

import pytest

from activities.tools.registry import describe_tools
from contracts.planning import CatalogAgent, CatalogTool, PlanningCatalog
from contracts.tool_checks import expression_problem, input_problems, timezone_problem
from workflows.plan_scaffold import copied_example, cued, file_to_save, steps_for

CATALOG = PlanningCatalog(
    tools=[
        CatalogTool(name=t.name, description=t.description, input_schema=t.input_schema)
        for t in describe_tools()
    ],
    agents=[CatalogAgent(name=name) for name in ("classifier", "extractor", "planner", "summarizer")],
)

PARAGRAPH = "Temporal records 17 steps of a workflow, so that a crash never loses work."


def _steps(goal: str) -> list[tuple[str, Any]]:
    steps = steps_for(goal, cued(goal, CATALOG), CATALOG, agent="planner")
    return [(s.name, s.input if s.kind == "tool" else s.prompt) for s in steps]


@pytest.mark.parametrize(
    ("goal", "expected"),
    [
        (
            "Compute 17*23 and save the answer in a file answer.md",
            [
                ("calculator", {"expression": "17*23"}),
                ("write_artifact", {"name": "answer.md", "content": "{{nodes.step1.output}}\n"}),
            ],
        ),
        ("What is 2 to the power of 10?", [("calculator", {"expression": "2 ** 10"})]),
        ("What is the square root of 144?", [("calculator", {"expression": "sqrt(144)"})]),
        ("Multiply six by seven", [("calculator", {"expression": "6 * 7"})]),
        (
            "What is 6 times 7? Save the answer in result.txt",
            [
                ("calculator", {"expression": "6 * 7"}),
                ("write_artifact", {"name": "result.txt", "content": "{{nodes.step1.output}}\n"}),
            ],
        ),
        ("What is 9 minus 4?", [("calculator", {"expression": "9 - 4"})]),
        ("How much is 15% of 80?", [("calculator", {"expression": "15 / 100 * 80"})]),
        ("Calculate (12 + 8) / 4", [("calculator", {"expression": "(12 + 8) / 4"})]),
        ("What time is it in New York?", [("current_time", {"timezone": "America/New_York"})]),
        ("Find the current time in Asia/Kolkata", [("current_time", {"timezone": "Asia/Kolkata"})]),
        (
            "Fetch https://example.org/page and save it as page.md",
            [
                ("http_request", {"method": "GET", "url": "https://example.org/page"}),
                ("write_artifact", {"name": "page.md", "content": "{{nodes.step1.output.text}}\n"}),
            ],
        ),
        (
            "Remember that my favourite colour is green",
            [("remember", {"agent": "planner", "content": "my favourite colour is green"})],
        ),
        (
            "What do you remember about my favourite colour?",
            [("recall", {"agent": "planner", "query": "my favourite colour", "limit": 5})],
        ),
        (
            f"Summarise this paragraph: {PARAGRAPH}",
            [("summarizer", f"Summarise this paragraph: {PARAGRAPH}")],
        ),
        (
            "Work out 17 * 23 and explain the result.",
            [
                ("calculator", {"expression": "17 * 23"}),
                ("summarizer", "Work out 17 * 23 and explain the result.\n\nInput:\n{{nodes.step1.output}}"),
            ],
        ),
        ("Write a haiku about autumn.", []),  # no cue: the model picks the step
    ],
)
def test_a_goals_own_words_give_its_steps_and_inputs(goal: str, expected: list[tuple[str, Any]]) -> None:
    assert _steps(goal) == expected


def test_material_after_a_summarise_colon_is_not_read_as_instructions() -> None:
    # The paragraph holds "17 steps" and "save": neither a calculator nor a file step.
    assert cued(f"Summarise this: {PARAGRAPH} Save 3 * 4 in x.md", CATALOG) == ["summarizer"]
    assert file_to_save(f"Summarise this: {PARAGRAPH} Save it in x.md") is None


def test_a_plan_repeating_the_instructions_example_is_caught_unless_the_goal_says_it() -> None:
    plan = {
        "name": "multiply-and-explain",
        "steps": [{"tool": "calculator", "input": {"expression": "17 * 23"}}],
    }
    assert len(copied_example(plan, "Summarise the news")) == 2
    assert copied_example({"steps": [{"input": {"expression": "17 * 23"}}]}, "Work out 17*23") == []


def test_tool_inputs_are_checked_against_what_the_tools_can_read() -> None:
    assert timezone_problem("Asia/Tokyo") is None and timezone_problem("UTC") is None
    assert "not an IANA time zone name" in (timezone_problem("UTC+08") or "")
    assert expression_problem("sqrt(2) ** 2 + (3 - 1) / 4") is None
    assert "not an arithmetic expression" in (expression_problem("17 x 23") or "")
    assert "names 'x'" in (expression_problem("x + 1") or "")
    assert "calls something other than" in (expression_problem("__import__('os')") or "")
    assert "not a number" in (expression_problem("'a' * 3") or "")
    assert input_problems("calculator", {"expression": "{{params.e}}"}) == []
    assert input_problems("noop", {"value": "UTC+08"}) == []


def test_the_example_values_are_the_ones_the_planner_prompt_shows() -> None:
    """copied_example looks for these literals: an edit of the prompt's example must move them too."""
    from workflows.plan_scaffold import EXAMPLE_VALUES
    from workflows.planning import NATIVE_RULES

    assert all(value in NATIVE_RULES for value in EXAMPLE_VALUES)
