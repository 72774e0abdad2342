"""The native planner schema is built per request from the tool registry and the agents."""

from activities.tools.registry import describe_tools
from contracts.planning import CatalogAgent, CatalogTool, PlanningCatalog, plan_output_schema, spec_from_plan


def _catalog(agents: list[str]) -> PlanningCatalog:
    tools = [CatalogTool(name=t.name, input_schema=t.input_schema) for t in describe_tools()]
    return PlanningCatalog(tools=tools, agents=[CatalogAgent(name=a) for a in agents])


def test_plan_schema_enums_follow_the_tool_registry_and_the_active_agents() -> None:
    schema = plan_output_schema(_catalog(["writer", "summarizer"]))
    choices = schema["properties"]["steps"]["items"]["anyOf"]
    tools = [c["properties"]["tool"]["enum"][0] for c in choices if "tool" in c["properties"]]
    assert sorted(tools) == sorted(t.name for t in describe_tools())
    [agent_choice] = [c for c in choices if "agent" in c["properties"]]
    assert agent_choice["properties"]["agent"]["enum"] == ["summarizer", "writer"]
    calculator = next(c for c in choices if c["properties"].get("tool", {}).get("enum") == ["calculator"])
    assert calculator["properties"]["input"] == next(
        t.input_schema for t in describe_tools() if t.name == "calculator"
    )
    assert schema["properties"]["steps"]["maxItems"] >= 1


def test_plan_node_ids_come_from_positions_and_template_references_become_dependencies() -> None:
    spec = spec_from_plan(
        {
            "name": "x",
            "steps": [
                {"tool": "calculator", "input": {"expression": "6*7"}, "after": []},
                {"agent": "summarizer", "prompt": "Explain {{nodes.step1.output}}", "after": []},
            ],
        }
    )
    assert [(n.id, n.depends_on) for n in spec.nodes] == [("step1", []), ("step2", ["step1"])]


def test_after_keeps_only_earlier_steps_so_a_self_reference_does_not_fail_the_plan() -> None:
    spec = spec_from_plan(
        {
            "name": "x",
            "steps": [
                {"tool": "calculator", "input": {"expression": "1+1"}, "after": [1]},
                {"agent": "summarizer", "prompt": "Explain", "after": [1, 2, 3]},
                {"agent": "summarizer", "prompt": "Again", "after": [2, 0, -1]},
            ],
        }
    )
    assert [(n.id, n.depends_on) for n in spec.nodes] == [
        ("step1", []),
        ("step2", ["step1"]),
        ("step3", ["step2"]),
    ]
