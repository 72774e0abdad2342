"""Services define no pydantic models: a read model more than one front end or service answers
is a contract (`contracts/`), one only the API answers lives beside its route (`api/routes/`).

A model defined in a service would be a response shape hidden in the domain layer, where the next
route or handler would import it from; this keeps the rule written in docs/layout.md true.
"""

import importlib
import inspect
import pkgutil

from pydantic import BaseModel


def _models_defined_in(package_name: str) -> list[str]:
    """`module.Class` of every pydantic model a module of the package defines (not imports)."""
    package = importlib.import_module(package_name)
    found = []
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
        module = importlib.import_module(info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseModel)
                and value.__module__ == module.__name__
            ):
                found.append(f"{module.__name__}.{name}")
    return sorted(found)


def test_no_services_module_defines_a_pydantic_model() -> None:
    assert _models_defined_in("services") == []


def test_the_check_finds_models_where_they_are_defined() -> None:
    """The walk is live: it finds the read models contracts define, and only where defined."""
    found = _models_defined_in("contracts")
    assert "contracts.runs.RunSummary" in found
    assert "contracts.dag_executions.Started" in found
    assert "contracts.runs.TokenUsage" not in found  # imported there, defined in contracts/usage.py
