"""Which tool names exist: the built-in tools of `contracts.tool_inputs`."""

from contracts.tool_inputs import tool_names

KNOWN_TOOLS: frozenset[str] = tool_names()


def unknown_tools(names: list[str]) -> list[str]:
    """The names that no registered tool carries, sorted."""
    return sorted(set(names) - KNOWN_TOOLS)
