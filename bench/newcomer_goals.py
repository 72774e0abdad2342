"""The goals a newcomer tries first on the embedded model, each with how to tell a right outcome.

`bench/local_model.py` runs all of them through the REST API of `make run`'s stack and prints how
many succeed with the right answer and artifact; the README's tour runs some of them
(tests/test_readme_tour.py checks that every tour goal is one of these). A check reads what a
user can read: the run, its steps (each node's output preview) and the files the run saved.
"""

import asyncio
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

PARAGRAPH = (
    "Temporal runs workflows durably. A worker that dies loses nothing, because every step is "
    "recorded in an event history and replayed on another worker."
)
"""The text the summary goal gives."""
PAGE_TEXT = "Tide tables for Harbour Bay: high water 06:12, low water 12:31."
"""What the local page the fetch goal reads says (served by the bench, not the internet)."""
PAGE_URL = "{page_url}"
"""Replaced by the bench with the address of its local page."""

RUN_LIMIT_S = 600.0


@dataclass
class Outcome:
    """What a user sees of one goal run through the API."""

    status: str
    nodes: list[dict[str, Any]]
    files: dict[str, str]
    """Each artifact the run's nodes saved, by the name the plan gave it, with its text."""
    error: str = ""

    def outputs(self) -> str:
        return "\n".join(str(n.get("detail") or "") for n in self.nodes)

    def tools(self) -> list[str]:
        return [str(n.get("tool") or "") for n in self.nodes]


Check = Callable[[Outcome], str | None]
"""None when the outcome is right, else what is wrong."""


def _text(outcome: Outcome, file: str | None) -> str | None:
    """The named file's text (None: the run saved no such file), or every node's output."""
    return outcome.outputs() if file is None else outcome.files.get(file)


def _not_saved(outcome: Outcome, file: str | None) -> str:
    return f"no {file} saved (files: {sorted(outcome.files)})"


def has(*needles: str, file: str | None = None) -> Check:
    """Every needle in the named file (or, without one, in some node's output)."""

    def check(outcome: Outcome) -> str | None:
        text = _text(outcome, file)
        if text is None:
            return _not_saved(outcome, file)
        missing = [n for n in needles if n.lower() not in text.lower()]
        return f"{missing} not in {file or 'the outputs'}: {text[:160]!r}" if missing else None

    return check


def number(value: str, *, file: str | None = None) -> Check:
    """The number `value` appears as a whole number (391, not 3910) in the file or the outputs."""

    def check(outcome: Outcome) -> str | None:
        text = _text(outcome, file)
        if text is None:
            return _not_saved(outcome, file)
        if re.search(rf"(?<![\d.]){re.escape(value)}(?:\.0+)?(?![\d])", text):
            return None
        return f"{value} not in {file or 'the outputs'}: {text[:160]!r}"

    return check


def summary_of(text: str, subject: str) -> Check:
    """Some node wrote a summary of `text`: shorter than it, not a copy, and naming its subject
    (a summary about something else, or the text echoed back, is wrong)."""

    def check(outcome: Outcome) -> str | None:
        for node in outcome.nodes:
            said = str(node.get("detail") or "")
            if subject.lower() in said.lower() and len(said.strip()) < len(text) and text not in said:
                return None
        return f"no summary naming {subject!r} shorter than the text: {outcome.outputs()[:160]!r}"

    return check


def planned(tool: str, *needles: str) -> Check:
    """A `tool` step ran, with every needle in its input (what `remember` stores is its input)."""

    def check(outcome: Outcome) -> str | None:
        for node in outcome.nodes:
            text = json.dumps(node.get("input") or {}).lower()
            if node.get("tool") == tool and all(n.lower() in text for n in needles):
                return None
        return f"no {tool} step with {list(needles)} (plan: {outcome.tools()})"

    return check


def either(*checks: Check) -> Check:
    def check(outcome: Outcome) -> str | None:
        problems = [c(outcome) for c in checks]
        return None if any(p is None for p in problems) else "; ".join(p for p in problems if p)

    return check


@dataclass(frozen=True)
class Goal:
    title: str
    objective: str
    check: Check = field(compare=False)


GOALS: tuple[Goal, ...] = (
    Goal(
        "multiply", "Compute 17*23 and save the answer in a file answer.md", number("391", file="answer.md")
    ),
    Goal("six sevens", "What is 6 times 7? Save the answer in result.txt", number("42", file="result.txt")),
    Goal("time in Tokyo", "What time is it in Tokyo? Save it in tokyo.md.", has("+09:00", file="tokyo.md")),
    Goal("power", "What is 2 to the power of 10?", number("1024")),
    Goal("summary", f"Summarise this paragraph: {PARAGRAPH}", summary_of(PARAGRAPH, "Temporal")),
    Goal("fetch", f"Fetch {PAGE_URL} and save the page in page.md", has("Harbour Bay", file="page.md")),
    Goal(
        "classify",
        "Classify this customer message as bug, feature request or praise: "
        "'The app crashes when I upload a photo.'",
        has("bug"),
    ),
    Goal("remember", "Remember that my favourite colour is green.", planned("remember", "green")),
    Goal("time in New York", "What time is it in New York?", either(has("-05:00"), has("-04:00"))),
    Goal("average", "Compute (12+8)/4 and save the result in result.txt", number("5", file="result.txt")),
    Goal("square root", "What is the square root of 144?", number("12")),
    Goal("recall", "Recall what you remember about my favourite colour.", has("green")),
)
"""Twelve small, concrete goals: compute (and save), time somewhere (and save), fetch and save,
summarise given text, classify a message, remember and recall (in that order: recall reads what
`remember` stored)."""


async def run_goal(http: httpx.AsyncClient, goal: Goal, *, page_url: str = "") -> tuple[Outcome, float]:
    """Create the goal, run it, wait for it through the API; what the run left, and its seconds."""
    objective = goal.objective.replace(PAGE_URL, page_url)
    created = await http.post("/api/v1/goals", json={"title": goal.title, "objective": objective})
    created.raise_for_status()
    began = time.monotonic()
    run_id = (await http.post(f"/api/v1/goals/{created.json()['id']}/run")).json()["id"]
    run: dict[str, Any] = {}
    async with asyncio.timeout(RUN_LIMIT_S):
        while True:
            run = (await http.get(f"/api/v1/runs/{run_id}")).json()
            if run.get("status") not in (None, "running"):
                break
            await asyncio.sleep(1)
    seconds = time.monotonic() - began
    steps = (await http.get(f"/api/v1/runs/{run_id}/steps")).json()["steps"]
    plan_nodes = ((run.get("result") or {}).get("plan") or {}).get("nodes") or []
    by_id = {str(n["id"]): n for n in plan_nodes}
    nodes = [_with_plan(s, by_id.get(s["id"], {})) for s in steps if s["kind"] == "node"]
    files: dict[str, str] = {}
    for node in plan_nodes:
        name = (node.get("input") or {}).get("name") if node.get("tool") == "write_artifact" else None
        if isinstance(name, str):
            content = await http.get(f"/api/v1/artifacts/{name}")
            if content.status_code == 200:
                files[name] = content.text
    failure = run.get("failure") or {}
    error = str(failure.get("message") or next((s["error"] for s in steps if s.get("error")), ""))
    return Outcome(status=str(run.get("status")), nodes=nodes, files=files, error=error), seconds


def _with_plan(step: dict[str, Any], planned: dict[str, Any]) -> dict[str, Any]:
    """A node's step with its plan entry's tool (`agent:<name>` for an agent step) and input."""
    tool = planned.get("tool") or f"agent:{planned.get('agent')}"
    return {**step, "tool": str(tool), "input": planned.get("input")}


def verdict(goal: Goal, outcome: Outcome) -> str | None:
    """None when the run succeeded with the right answer (and file), else why not."""
    if outcome.status != "succeeded":
        return f"run {outcome.status}: {outcome.error[:160]}"
    return goal.check(outcome)
