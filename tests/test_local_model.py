"""The embedded local model end to end, as a newcomer gets it: the real `make run` launcher with
LLM_PROVIDER=local on a fresh SQLite database, the real SmolLM2 served by xllamacpp, no fakes. A
goal with only a title and an objective is planned (the plan validates), run and summarised.

The model file is provisioned once into the checkout's data/models (CI downloads it once per
machine) and handed to the launcher with LOCAL_MODEL_PATH.
"""

import asyncio
import secrets
import time
from pathlib import Path

import httpx
import pytest

from core import local_model
from core.crypto import new_key
from core.settings import Settings
from tests.stack import local_model_env, running_launcher, until, until_model_serves

pytestmark = pytest.mark.slow

GOAL_RUN_LIMIT_S = 600


async def test_make_run_with_the_local_model_plans_runs_and_summarises_a_goal_with_only_title_and_objective(
    tmp_path: Path,
) -> None:
    model = (await asyncio.to_thread(local_model.provision, Settings(local_model_path=None))).resolve()
    token = secrets.token_urlsafe(24)
    began = time.monotonic()
    with running_launcher(
        tmp_path, **local_model_env(model), API_TOKEN=token, ENCRYPTION_KEYS=new_key()
    ) as launcher:
        async with httpx.AsyncClient(
            base_url=launcher.api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as http:
            await until_model_serves(http, launcher)
            ready_s = time.monotonic() - began
            created = await http.post(
                "/api/v1/goals",
                json={"title": "multiply", "objective": "Work out 6 * 7 with the calculator and report it."},
            )
            assert created.status_code == 201, created.text
            assert created.json()["agent_name"] == "planner"
            run_id = (await http.post(f"/api/v1/goals/{created.json()['id']}/run")).json()["id"]

            async def closed() -> bool:
                run = await http.get(f"/api/v1/runs/{run_id}")
                return run.status_code == 200 and run.json()["status"] != "running"

            await until(closed, "the goal run to finish", launcher, GOAL_RUN_LIMIT_S)
            run = (await http.get(f"/api/v1/runs/{run_id}")).json()
            steps = (await http.get(f"/api/v1/runs/{run_id}/steps")).json()
    goal_s = time.monotonic() - began - ready_s
    print(f"ready {ready_s:.0f}s after start; goal {run['status']} {goal_s:.0f}s later")
    plan = steps["steps"][0]
    print("plan step:", plan)
    assert run["status"] == "succeeded", (run, steps)
    assert plan["status"] == "succeeded", f"the plan did not validate: {plan}"
    nodes = [s for s in steps["steps"] if s["kind"] == "node"]
    assert nodes and all(n["status"] == "succeeded" for n in nodes)
    summary = steps["steps"][-1]
    assert summary["kind"] == "summary" and summary["status"] == "succeeded" and summary["artifact"]
