"""One direction of imports: each package imports only the layers below it.

The layers are declared once, as an import-linter contract in pyproject.toml:
contracts <- core <- storage <- services | activities <- workflows <- api | bot | cli.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from temporalio import workflow

from contracts import workflow_names
from worker import ACTIVITIES, WORKFLOWS, activity_name

ROOT = Path(__file__).resolve().parent.parent


LAYERED = ("api", "bot", "cli", "workflows", "services", "activities", "storage", "core", "contracts")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    linter = Path(sys.executable).parent / "lint-imports"
    return subprocess.run(
        [str(linter), "--no-cache", "--no-logo"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(root)},
    )


def test_no_package_imports_a_layer_above_it() -> None:
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_linter_catches_an_upward_import(tmp_path: Path) -> None:
    """The contract is live: a service that imports a workflow breaks it."""
    for package in LAYERED:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "services" / "upward.py").write_text("from workflows.dag import DagWorkflow\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "services.upward -> workflows.dag" in result.stdout


def test_workflows_and_the_standalone_activity_answer_to_the_contract_names() -> None:
    """Callers address workflows by `contracts.workflow_names`; the worker registers exactly those."""
    registered = {workflow._Definition.must_from_class(cls).name for cls in WORKFLOWS}
    declared = {
        value
        for name, value in vars(workflow_names).items()
        if name.endswith("_WORKFLOW") and isinstance(value, str)
    }
    assert declared <= registered
    assert workflow_names.VALIDATE_PROVIDER_ACTIVITY in {activity_name(fn) for fn in ACTIVITIES}
