"""/status: a goal run's steps, or a DAG execution's nodes."""

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message
from temporalio.client import Client

from bot import texts
from bot.replies import answer_text
from core.errors import Conflict
from core.settings import Settings
from services import dag_executions, runs


async def _goal_run(temporal: Client, settings: Settings, run_id: str) -> str:
    detail = await runs.get_run(temporal, settings, run_id)
    lines = [f"{texts.icon(detail.status)} {run_id}: {detail.status}"]
    if detail.phase and detail.status == "running":
        lines[0] += f" ({detail.phase})"
    if detail.usage.total_tokens:
        lines.append(texts.tokens(detail.usage.total_tokens))
    if detail.failure is not None:
        lines.append(f"error: {detail.failure.message}")
    try:
        progress = await runs.get_steps(temporal, run_id)
    except Conflict:  # no worker answered the query: the summary above is all there is
        progress = None
    if progress is not None and progress.steps:
        nodes = [s for s in progress.steps if s.kind == "node"]
        done = sum(1 for s in nodes if s.status in ("succeeded", "failed", "skipped", "cancelled"))
        if nodes:
            lines.append(f"{done}/{len(nodes)} nodes done")
        for step in progress.steps:
            line = f"{texts.icon(step.status)} {step.id} ({step.kind}) {step.status}"
            if step.error:
                line += f": {step.error}"
            elif step.detail:
                line += f": {step.detail[:200]}"
            lines.append(line)
    if detail.result is not None and detail.result.summary:
        lines += ["", "Summary:", detail.result.summary]
    lines.append(detail.web_ui_url)
    return "\n".join(lines)


async def _dag_execution(temporal: Client, settings: Settings, execution_id: str) -> str:
    detail = await dag_executions.get_execution(temporal, settings, execution_id)
    lines = [
        f"{texts.icon(detail.status)} {execution_id}: {detail.status}",
        f"{detail.done}/{detail.total} nodes done",
    ]
    if detail.usage.total_tokens:
        lines.append(texts.tokens(detail.usage.total_tokens))
    if detail.error:
        lines.append(f"error: {detail.error}")
    for node in detail.nodes:
        line = f"{texts.icon(node.status)} {node.id} {node.status}"
        if node.error:
            line += f": {node.error}"
        elif node.output_preview:
            line += f": {node.output_preview[:200]}"
        lines.append(line)
    lines.append(detail.web_ui_url)
    return "\n".join(lines)


async def status_command(
    message: Message, command: CommandObject, settings: Settings, temporal: Client
) -> None:
    run_id = (command.args or "").strip()
    if not run_id or " " in run_id or len(run_id) > 255:
        await message.answer(texts.usage("status"))
        return
    if run_id.startswith("dag-"):
        text = await _dag_execution(temporal, settings, run_id)
    else:
        text = await _goal_run(temporal, settings, run_id)
    await answer_text(message, text, filename=f"{run_id}.txt", caption=f"Status of {run_id}")


def router() -> Router:
    """A fresh router: a Dispatcher owns its routers, so a restarted bot builds new ones."""
    found = Router(name="runs")
    found.message.register(status_command, Command("status"))
    return found
