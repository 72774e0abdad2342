"""What a built-in tool's input must be beyond its JSON schema, checked before anything runs.

A schema can say "a string of 1 to 64 characters"; it cannot say "a time zone that exists" or "an
expression the calculator can read". Plan validation (`validate_spec`) asks these checks too, so a
planner's `UTC+08` or `17 x 23` goes back to the planner with the reason instead of failing the
node at run time. Pure and deterministic: the zone list is read once at import, outside any
workflow sandbox.
"""

import ast
import zoneinfo
from collections.abc import Callable
from typing import Any

from contracts.templates import has_template

TIME_ZONES = frozenset(zoneinfo.available_timezones())
"""Every IANA zone this machine knows: the same list `current_time` resolves zones from."""

CALCULATOR_FUNCTIONS = frozenset(
    {"abs", "round", "min", "max", "sqrt", "log", "log10", "exp", "sin", "cos", "tan", "floor", "ceil"}
)
CALCULATOR_CONSTANTS = frozenset({"pi", "e", "tau"})
_ARITHMETIC = (
    ast.Expression,
    ast.BinOp,
    ast.UnaryOp,
    ast.Constant,
    ast.Call,
    ast.Name,
    ast.Load,
    ast.operator,
    ast.unaryop,
)


def expression_problem(expression: str) -> str | None:
    """Why the calculator cannot read `expression` (None: it can)."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        return f"{expression!r} is not an arithmetic expression (use numbers, + - * / ** ( ) and sqrt())"
    for node in ast.walk(tree):
        if not isinstance(node, _ARITHMETIC):
            return f"{expression!r} uses {type(node).__name__}, which the calculator does not read"
        if isinstance(node, ast.Constant) and (
            isinstance(node.value, bool) or not isinstance(node.value, int | float)
        ):
            return f"{expression!r} holds {node.value!r}, which is not a number"
        if isinstance(node, ast.Call) and not (
            isinstance(node.func, ast.Name) and node.func.id in CALCULATOR_FUNCTIONS and not node.keywords
        ):
            return f"{expression!r} calls something other than {', '.join(sorted(CALCULATOR_FUNCTIONS))}"
        if isinstance(node, ast.Name) and node.id not in CALCULATOR_FUNCTIONS | CALCULATOR_CONSTANTS:
            return f"{expression!r} names {node.id!r}, which is not a number, constant or function"
    return None


def timezone_problem(timezone: str) -> str | None:
    """Why `timezone` is not a zone (None: it is one), with a hint at the form it takes."""
    if timezone in TIME_ZONES:
        return None
    return f"{timezone!r} is not an IANA time zone name (such as 'Asia/Tokyo', 'Europe/Berlin' or 'UTC')"


_CHECKS: dict[str, dict[str, Callable[[str], str | None]]] = {
    "calculator": {"expression": expression_problem},
    "current_time": {"timezone": timezone_problem},
}


def input_problems(tool: str, value: dict[str, Any]) -> list[str]:
    """What is wrong with a built-in tool's input beyond its schema; a templated value stands for
    whatever it will be and is not checked."""
    problems = []
    for field, check in _CHECKS.get(tool, {}).items():
        given = value.get(field)
        if isinstance(given, str) and not has_template(given):
            problem = check(given)
            if problem is not None:
                problems.append(f"input[{field!r}]: {problem}")
    return problems
