"""Which tool names exist; the tool registry (DAG engine) fills this in."""

KNOWN_TOOLS: frozenset[str] = frozenset()


def unknown_tools(names: list[str]) -> list[str]:
    """The names that no registered tool carries, sorted."""
    return sorted(set(names) - KNOWN_TOOLS)
