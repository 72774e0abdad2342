"""The embedded model's plans: a scaffold that asks a 135M model only what it can answer.

SmolLM2-135M, asked for a whole DAG at once, copies the prompt's worked example into unrelated
goals, forgets the step that saves the file the goal names, and writes `UTC+08` for Tokyo (the
first-five-minutes issue measured this). So for a schema-constrained (`local`) planner the plan is
built in small pieces, each one as constrained as the answer allows:

1. **Steps.** The goal's own words pick the tools and agents (a URL → `http_request`, "what time"
   → `current_time`, "17*23" → `calculator`, "summarise" → the summarizer, ...), in the order the
   goal mentions them. Only a goal that names none asks the model, to pick one from an enum.
2. **Inputs.** Each step's input is taken from the goal where the goal states it (the URL, the
   expression, the city's IANA zone, the fact to remember); otherwise the model fills that one
   tool's input against its own schema, tightened (a zone is an enum of real zones).
3. **Saving.** A goal that names a file (`answer.md`) ends with a `write_artifact` of that name
   holding the last step's output.

Everything here is pure and deterministic (no I/O, no clock): workflow code calls it, and the
model requests it leads to are activities (workflows/planning.py).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from contracts.planning import CatalogTool, PlanningCatalog, step_id
from contracts.tool_checks import TIME_ZONES, expression_problem

MAX_SCAFFOLD_STEPS = 3
"""Steps the goal's words may pick (a save step comes on top)."""

CUES: tuple[tuple[str, str], ...] = (
    ("http_request", r"https?://\S+|\bfetch\b|\bdownload\b"),
    (
        "current_time",
        r"\bwhat time\b|\bthe time\b|\bcurrent time\b|\btime (?:is it )?in\b|\b(?:date|day) (?:is it )?in\b"
        r"|\btoday'?s date\b|\btime ?zone\b",
    ),
    (
        "calculator",
        r"\d\s*(?:[-+*/x\u00d7^%]|\*\*)\s*\(?\d|\d\s+(?:times|plus|minus|divided by)\s+\d"
        r"|\bcalculat|\bcompute\b|\bwork out\b|\bmultipl|\bdivide"
        r"|\bsquare root\b|\bpower of\b|\bsum of\b|\bhow much is\b",
    ),
    ("recall", r"\brecall\b|\bwhat do you remember\b|\bwhat did i (?:tell|say)\b"),
    ("remember", r"\bremember that\b|\bnote that\b|\bkeep in mind that\b"),
    ("summarizer", r"\bsummar[iy][sz]e|\bsummary\b|\bexplain\b|\btl;?dr\b"),
    ("classifier", r"\bclassif|\bcategori[sz]e\b|\blabel\b"),
)
"""Which words of a goal point at which tool or agent. Agents are the default ones; a catalog
without one simply never gets it."""

_MATERIAL = re.compile(r":\s+")
"""'Summarise this paragraph: <text>': what follows the colon is material, not instructions."""
_FILE = re.compile(r"(?<![\w/.-])([A-Za-z0-9][A-Za-z0-9_-]*\.(?:md|txt|json|csv|html|yaml|yml|log))\b")
_URL = re.compile(r"https?://[^\s'\"<>)]+")
_NUMBER_WORDS: tuple[str, ...] = ("zero", "one", "two", "three", "four", "five", "six")
_NUMBER_WORDS += ("seven", "eight", "nine", "ten", "eleven", "twelve")
_WORD_NUMBERS = {word: str(n) for n, word in enumerate(_NUMBER_WORDS)}
_PHRASES: tuple[tuple[str, str], ...] = (
    (r"(\d+(?:\.\d+)?)\s*%\s*of\s*(\d+(?:\.\d+)?)", r"\1 / 100 * \2"),
    (r"square root of\s*(\d+(?:\.\d+)?)", r"sqrt(\1)"),
    (r"(\d+(?:\.\d+)?)\s*(?:to the power of|raised to)\s*(\d+(?:\.\d+)?)", r"\1 ** \2"),
    (r"multiply\s*(\d+(?:\.\d+)?)\s*(?:by|and|with)\s*(\d+(?:\.\d+)?)", r"\1 * \2"),
    (r"divide\s*(\d+(?:\.\d+)?)\s*by\s*(\d+(?:\.\d+)?)", r"\1 / \2"),
    (r"(?:add|sum of)\s*(\d+(?:\.\d+)?)\s*and\s*(\d+(?:\.\d+)?)", r"\1 + \2"),
    (r"subtract\s*(\d+(?:\.\d+)?)\s*from\s*(\d+(?:\.\d+)?)", r"\2 - \1"),
    (r"\bmultiplied by\b|\btimes\b|(?<=\d)\s*[x\u00d7]\s*(?=\d)", " * "),
    (r"\bdivided by\b", " / "),
    (r"\bplus\b", " + "),
    (r"\bminus\b", " - "),
    (r"(?<=\d)\s*\^\s*(?=\d)", " ** "),
)
_SPAN = re.compile(r"(?:sqrt\(|[\d.]|\*\*|[-+*/()]|\s)+")
_ZONE_BY_PLACE = {zone.rsplit("/", 1)[-1].replace("_", " ").lower(): zone for zone in sorted(TIME_ZONES)}


@dataclass(frozen=True)
class Step:
    """One step of a scaffolded plan: a tool with its input (None: the model fills it) or an
    agent with its prompt."""

    name: str
    kind: str  # "tool" or "agent"
    input: dict[str, Any] | None = None
    prompt: str = ""


def instructions_part(goal: str) -> str:
    """The part of the goal that says what to do (before 'Summarise this: <material>')."""
    parts = _MATERIAL.split(goal, maxsplit=1)
    head = parts[0]
    agents = {"summarizer", "classifier"}
    if len(parts) == 2 and any(re.search(p, head, re.I) for n, p in CUES if n in agents):
        return head
    return goal


def cued(goal: str, catalog: PlanningCatalog) -> list[str]:
    """The tools and agents the goal's words point at, in the order the goal mentions them."""
    text = instructions_part(goal)
    available = {t.name for t in catalog.tools} | catalog.agent_names()
    found = []
    for name, pattern in CUES:
        match = re.search(pattern, text, re.I)
        if match and name in available:
            found.append((match.start(), name))
    return [name for _, name in sorted(found)][:MAX_SCAFFOLD_STEPS]


def file_to_save(goal: str) -> str | None:
    """The file name a goal asks to save into (`... save it in answer.md`), if it names one."""
    match = _FILE.search(instructions_part(goal))
    return match.group(1) if match else None


def expressions(goal: str) -> list[str]:
    """Arithmetic the goal states, rewritten the calculator's way, longest first."""
    text = instructions_part(goal).lower()
    text = re.sub(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", lambda m: _WORD_NUMBERS[m.group(1)], text)
    for pattern, replacement in _PHRASES:
        text = re.sub(pattern, replacement, text)
    found = []
    for match in _SPAN.finditer(text):
        span = " ".join(match.group(0).split()).strip(" .")
        while span.count("(") > span.count(")") and span.startswith("("):
            span = span[1:].strip()
        arithmetic = any(op in span for op in "+-*/(") and any(c.isdigit() for c in span)
        if arithmetic and expression_problem(span) is None and span not in found:
            found.append(span)
    return sorted(found, key=len, reverse=True)


def timezone_in(goal: str) -> str | None:
    """An IANA zone the goal names outright, or the zone of a city it names (Tokyo → Asia/Tokyo)."""
    for zone in re.findall(r"\b[A-Z][A-Za-z_]+/[A-Za-z_/+-]+\b|\bUTC\b", goal):
        if zone in TIME_ZONES:
            return str(zone)
    words = re.findall(r"[A-Za-z]+", goal)
    for size in (3, 2, 1):
        for i in range(len(words) - size + 1):
            place = " ".join(words[i : i + size]).lower()
            if place in _ZONE_BY_PLACE and words[i][0].isupper():
                return _ZONE_BY_PLACE[place]
    return None


def _after(patterns: Iterable[str], goal: str) -> str:
    """The goal's words after the first of `patterns` found in it (tried in order)."""
    for pattern in patterns:
        match = re.search(pattern, goal, re.I)
        if match:
            return goal[match.end() :].strip().rstrip(".?!").strip()
    return goal.strip()


def tool_input(name: str, goal: str, *, agent: str) -> dict[str, Any] | None:
    """The input the goal itself states for tool `name`; None where the model must fill it."""
    match name:
        case "calculator":
            found = expressions(goal)
            return {"expression": found[0]} if found else None
        case "current_time":
            zone = timezone_in(goal)
            return {"timezone": zone} if zone else None
        case "http_request":
            url = _URL.search(goal)
            return {"method": "GET", "url": url.group(0).rstrip(".,;")} if url else None
        case "remember":
            content = _after((r"\bremember that\b", r"\bnote that\b", r"\bkeep in mind that\b"), goal)
            return {"agent": agent, "content": content} if content else None
        case "recall":
            cues = (r"\bremember about\b", r"\bwhat did i (?:tell|say) (?:you )?about\b", r"\brecall\b")
            query = _after(cues, goal)
            return {"agent": agent, "query": query, "limit": 5}
    return None


def output_text(step: Step, number: int) -> str:
    """A template that reads step `number`'s output as text, whatever the tool answers."""
    ref = f"nodes.{step_id(number)}.output"
    match step.name:
        case "current_time":
            return f"{{{{{ref}.iso}}}} ({{{{{ref}.timezone}}}}, {{{{{ref}.weekday}}}})"
        case "http_request":
            return f"{{{{{ref}.text}}}}"
    return f"{{{{{ref}}}}}"


def steps_for(goal: str, names: Iterable[str], catalog: PlanningCatalog, *, agent: str) -> list[Step]:
    """The plan's steps for the chosen names: inputs the goal states, agents' prompts made from
    the goal and the previous step's output; a save step where the goal names a file."""
    steps: list[Step] = []
    agents = catalog.agent_names()
    for name in names:
        if name in agents:
            prompt = goal
            if steps:
                prompt += f"\n\nInput:\n{output_text(steps[-1], len(steps))}"
            steps.append(Step(name=name, kind="agent", prompt=prompt))
        else:
            steps.append(Step(name=name, kind="tool", input=tool_input(name, goal, agent=agent)))
    file = file_to_save(goal)
    writes = {t.name for t in catalog.tools} >= {"write_artifact"}
    if file and writes and steps:
        content = f"{output_text(steps[-1], len(steps))}\n"
        steps.append(Step(name="write_artifact", kind="tool", input={"name": file, "content": content}))
    return steps


def tightened_schema(tool: CatalogTool) -> dict[str, Any]:
    """The tool's input schema, narrowed where a grammar can hold the model to real values."""
    schema = dict(tool.input_schema or {"type": "object"})
    properties = dict(schema.get("properties", {}))
    if tool.name == "current_time":
        properties["timezone"] = {"type": "string", "enum": sorted(TIME_ZONES)}
        schema["required"] = ["timezone"]
    if tool.name == "calculator":
        properties["expression"] = {"type": "string", "pattern": r"^(sqrt\(|[0-9]|\*\*|[-+*/(). ]){1,60}$"}
    schema["properties"] = properties
    return schema


def plan_name(goal: str) -> str:
    """A DAG name from the goal's first words."""
    words = re.findall(r"[a-z0-9]+", goal.lower())[:5]
    return "-".join(words) or "plan"


EXAMPLE_VALUES = ("17 * 23", "multiply-and-explain", "Explain this result in one sentence")
"""Literal values of the native planner's worked example (workflows/planning.py NATIVE_RULES)."""


def copied_example(plan: Any, goal: str) -> list[str]:
    """Values of the prompt's worked example that a plan repeats although the goal never says
    them: the plan copied the example instead of planning the goal."""
    text = str(plan)
    squashed = re.sub(r"\s+", "", goal.lower())
    return [
        f"the plan copies the instructions' example ({value!r}); plan this goal's own steps"
        for value in EXAMPLE_VALUES
        if value in text and re.sub(r"\s+", "", value.lower()) not in squashed
    ]
