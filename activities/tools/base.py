"""What every tool shares: its spec, its Temporal activity, and the one wrapper they all run in.

A tool is an async function `impl(args) -> output` over one Pydantic input model. `make_tool`
turns it into a `ToolSpec` carrying a Temporal activity named after the tool. Every call, from a
DAG node (the activity) or from an agent (the pydantic-ai toolset), goes through `run_tool`:
`artifact://` references in the input are replaced by artifact content, the input is validated,
the tool runs, and a large output is stored as an artifact and returned by reference. A tool
activity heartbeats while it runs (so cancellation and a lost worker reach it within
`TOOL_HEARTBEAT_TIMEOUT`), and numbers its side effects so a retry finds their earlier results
(`activities.idempotency`).
"""

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.artifacts import ArtifactReferenceError, has_references, resolve_references, tool_result
from activities.heartbeat import heartbeating
from activities.idempotency import side_effect_scope
from contracts.tools import BUILTIN_TOOLS, TOOL_INPUT_INVALID, ToolInfo, ToolResult
from contracts.usage import TokenUsage

M = TypeVar("M", bound=BaseModel)

ToolArgs = Annotated[M | dict[str, Any], Field(union_mode="left_to_right")]
"""An activity's argument type: its input model, or the raw dict when that does not validate.

Temporal decodes arguments before the activity runs, and a decoding failure is retried like any
other. Accepting the raw dict lets `run_tool` refuse bad input with a typed, non-retryable error,
and lets an `artifact://` reference stand in for a non-string field until it is resolved.
"""


class ToolError(Exception):
    """A tool failure with a type: final unless `retryable` (a network hiccup, not bad input).

    An activity raises it as an ApplicationError of type `kind`; an agent's tool call hands the
    message back to the model so it can correct itself.
    """

    def __init__(self, message: str, *, kind: str = TOOL_INPUT_INVALID, retryable: bool = False) -> None:
        super().__init__(message)
        self.kind = kind
        self.retryable = retryable

    def application_error(self) -> ApplicationError:
        """The typed Temporal failure for this error."""
        return ApplicationError(str(self), type=self.kind, non_retryable=not self.retryable)


@dataclass(frozen=True)
class Output:
    """What a tool returns when it also has token usage to report (agent calls)."""

    value: Any
    usage: TokenUsage


Impl = Callable[[Any], Awaitable[Any]]


@dataclass(frozen=True)
class ToolSpec:
    """One registered tool."""

    info: ToolInfo
    description: str
    input_model: type[BaseModel]
    impl: Impl
    activity: Callable[..., Awaitable[ToolResult]]

    @property
    def name(self) -> str:
        return self.info.name

    def input_schema(self) -> dict[str, Any]:
        """The JSON schema of the tool's input (a fresh copy; generated once per model)."""
        schema: dict[str, Any] = json.loads(_schema_json(self.input_model))
        return schema


@cache
def _schema_json(model: type[BaseModel]) -> str:
    # Generating the schemas of every tool took milliseconds per planning catalog; they never change.
    return json.dumps(model.model_json_schema())


def describe_validation_error(exc: ValidationError) -> str:
    """Each problem as `field: message`, without echoing the input values."""
    problems = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"]) or "input"
        problems.append(f"{location}: {error['msg']}")
    return "; ".join(problems)


async def run_tool(spec: ToolSpec, args: BaseModel | dict[str, Any]) -> ToolResult:
    """Resolve references, validate, run, and store a large output as an artifact."""
    with side_effect_scope():
        return await _run_tool(spec, args)


async def _run_tool(spec: ToolSpec, args: BaseModel | dict[str, Any]) -> ToolResult:
    raw = args.model_dump() if isinstance(args, BaseModel) else args
    if not isinstance(raw, dict):
        raise ToolError(f"input for tool {spec.name} must be a JSON object")
    validated: BaseModel | None = None
    if has_references(raw):
        try:
            raw = await resolve_references(raw)
        except ArtifactReferenceError as exc:
            raise ToolError(str(exc), kind=exc.kind) from None
    elif isinstance(args, spec.input_model):
        validated = args
    if validated is None:
        try:
            validated = spec.input_model.model_validate(raw)
        except ValidationError as exc:
            raise ToolError(f"invalid input for tool {spec.name}: {describe_validation_error(exc)}") from None
    output = await spec.impl(validated)
    if isinstance(output, Output):
        return await tool_result(spec.name, output.value, output.usage)
    return await tool_result(spec.name, output)


def make_tool(
    *, name: str, description: str, input_model: type[M], impl: Callable[[M], Awaitable[Any]]
) -> ToolSpec:
    """A ToolSpec whose activity is named `name` and takes `input_model` (or its raw dict)."""
    info = BUILTIN_TOOLS.get(name) or ToolInfo(name=name)
    spec_holder: list[ToolSpec] = []

    async def tool_activity(args: Any) -> ToolResult:
        try:
            async with heartbeating():
                return await run_tool(spec_holder[0], args)
        except ToolError as exc:
            raise exc.application_error() from None

    tool_activity.__name__ = tool_activity.__qualname__ = name
    tool_activity.__doc__ = description
    tool_activity.__annotations__ = {"args": ToolArgs[input_model], "return": ToolResult}  # type: ignore[misc,valid-type]
    defined = activity.defn(name=name)(tool_activity)
    spec = ToolSpec(info=info, description=description, input_model=input_model, impl=impl, activity=defined)
    spec_holder.append(spec)
    return spec
