"""The README's five-minute tour, run as written on the real embedded model: its bash block in the
directory of a real `make run` launcher (so `data/generated.env` is the launcher's), against that
launcher's API, and what it prints held against the README's own text block (`…` is a wildcard).
Its goals must be goals of the newcomer bench (bench/newcomer_goals.py), so the README's figure
is about the goals it shows."""

import asyncio
import re
import subprocess
from pathlib import Path

import httpx
import pytest

from bench.newcomer_goals import GOALS
from core import local_model
from core.settings import Settings
from tests.stack import ROOT, local_model_env, running_launcher, until_model_serves

README = ROOT / "README.md"
SECTION = "## Five minutes on the embedded model"
README_ADDRESS = "http://127.0.0.1:8000"
TOUR_LIMIT_S = 900


def tour() -> tuple[str, list[str]]:
    """The tour's bash block and the lines its text block says it prints."""
    section = README.read_text().split(SECTION, 1)[1].split("\n## ", 1)[0]
    script = re.search(r"```bash\n(.*?)```", section, re.S)
    printed = re.search(r"```text\n(.*?)```", section, re.S)
    assert script and printed, f"the README's {SECTION!r} lost its bash or text block"
    return script.group(1), printed.group(1).splitlines()


def line_pattern(line: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in line.split("…")) + "$")


def unmatched(claimed: list[str], output: list[str]) -> list[str]:
    """The claimed lines not found in `output`, in order (each after the previous one's match)."""
    rest = iter(output)
    return [line for line in claimed if not any(line_pattern(line).match(o) for o in rest)]


def test_the_tour_is_the_readmes_and_its_goals_are_bench_goals() -> None:
    script, claimed = tour()
    objectives = re.findall(r'"objective": "([^"]+)"', script)
    assert objectives and set(objectives) <= {g.objective for g in GOALS}
    assert README_ADDRESS in script and claimed
    assert unmatched(["a", "b…d"], ["x", "a", "bcd"]) == []
    assert unmatched(["b…d", "a"], ["a", "bcd"]) == ["a"]


@pytest.mark.slow
async def test_the_readme_tour_prints_what_the_readme_says_on_the_embedded_model(tmp_path: Path) -> None:
    script, claimed = tour()
    model = (await asyncio.to_thread(local_model.provision, Settings(local_model_path=None))).resolve()
    with running_launcher(tmp_path, **local_model_env(model)) as launcher:
        env_file = (tmp_path / "data" / "generated.env").read_text()
        token = re.search(r"^API_TOKEN=(.+)$", env_file, re.M)
        assert token, "make run generated no API_TOKEN into data/generated.env"
        async with httpx.AsyncClient(
            base_url=launcher.api_url, headers={"Authorization": f"Bearer {token.group(1)}"}, timeout=30
        ) as http:
            await until_model_serves(http, launcher)
        ran = await asyncio.to_thread(
            subprocess.run,
            ["bash", "-euo", "pipefail", "-c", script.replace(README_ADDRESS, launcher.api_url)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TOUR_LIMIT_S,
        )
    output = ran.stdout.splitlines()
    print(ran.stdout)
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    assert unmatched(claimed, output) == [], ran.stdout
