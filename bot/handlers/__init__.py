"""The bot's routers, one per feature, in the order the dispatcher tries them."""

from aiogram import Router

from bot.handlers import agents, approvals, budget, errors, goals, intake, lists, runs, start, tasks


def routers() -> list[Router]:
    """Fresh routers for one Dispatcher. Commands first; plain text last, so it never shadows a
    command."""
    return [
        start.router(),
        goals.router(),
        runs.router(),
        agents.router(),
        lists.router(),
        tasks.router(),
        approvals.router(),
        budget.router(),
        intake.router(),
        errors.router(),
    ]
