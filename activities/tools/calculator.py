"""`calculator`: arithmetic over an `ast` walk, never `eval`, with bounded sizes.

Only numbers, + - * / // % **, unary signs, parentheses, a few math functions and constants are
allowed. Powers and results are bounded so `9**9**9` is refused instead of eating the worker.
"""

import ast
import math
import operator
from collections.abc import Callable
from typing import Any

from activities.tools.base import ToolError, make_tool
from contracts.tool_checks import CALCULATOR_CONSTANTS, CALCULATOR_FUNCTIONS
from contracts.tool_inputs import CalculatorInput
from contracts.tools import CALCULATOR_REJECTED

MAX_INT_BITS = 4096
MAX_EXPONENT = 10_000
MAX_NODES = 500

Number = int | float

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "abs": abs,
    "round": round,
    "min": min,
    "max": max,
    "sqrt": math.sqrt,
    "log": math.log,
    "log10": math.log10,
    "exp": math.exp,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "floor": math.floor,
    "ceil": math.ceil,
}
_CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}
# Plan validation checks expressions against these names before anything runs.
assert set(_FUNCTIONS) == CALCULATOR_FUNCTIONS and set(_CONSTANTS) == CALCULATOR_CONSTANTS


def _reject(message: str) -> ToolError:
    return ToolError(message, kind=CALCULATOR_REJECTED)


def _check_size(value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _reject("the result is not a real number")
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise _reject(f"an intermediate result exceeds {MAX_INT_BITS} bits")
    if isinstance(value, float) and not math.isfinite(value):
        raise _reject("the result is not finite")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise _reject(f"exponent {exponent} is larger than {MAX_EXPONENT}")
    # Refuse before computing: an integer result would have about exponent * log2|base| bits.
    if (
        isinstance(base, int)
        and isinstance(exponent, int)
        and exponent > 0
        and abs(base) > 1
        and exponent * math.log2(abs(base)) > MAX_INT_BITS
    ):
        raise _reject(f"an intermediate result exceeds {MAX_INT_BITS} bits")
    result = base**exponent
    if isinstance(result, complex):
        raise _reject("the result is not a real number")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise _reject(f"unsupported literal {node.value!r}")
        return _check_size(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow):
            return _check_size(_power(left, right))
        return _check_size(_BINARY[type(node.op)](left, right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _check_size(_UNARY[type(node.op)](_eval(node.operand)))
    if isinstance(node, ast.Name) and node.id in _CONSTANTS:
        return _CONSTANTS[node.id]
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _FUNCTIONS
        and not node.keywords
    ):
        args = [_eval(arg) for arg in node.args]
        return _check_size(_FUNCTIONS[node.func.id](*args))
    raise _reject(f"unsupported syntax: {type(node).__name__}")


def evaluate(expression: str) -> Number:
    """The value of an arithmetic expression, or a CalculatorRejected ToolError saying why."""
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError):
        raise _reject("not a valid arithmetic expression") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise _reject(f"expression has more than {MAX_NODES} parts")
    try:
        return _eval(tree)
    except ZeroDivisionError:
        raise _reject("division by zero") from None
    except (OverflowError, ValueError, TypeError) as exc:
        raise _reject(f"cannot compute: {exc}") from None


async def calculator(args: CalculatorInput) -> Number:
    return evaluate(args.expression)


SPEC = make_tool(
    name="calculator",
    description="Evaluate an arithmetic expression (+ - * / // % **, parentheses, sqrt, log, "
    "sin, cos, tan, abs, round, min, max, floor, ceil, pi, e) and return the number.",
    input_model=CalculatorInput,
    impl=calculator,
)
