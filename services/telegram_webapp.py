"""The run page (Telegram Web App and browser alike): who is asking, and the graph it draws.

Telegram signs the Web App's launch parameters with a key derived from the bot token (HMAC-SHA256
of the sorted fields under HMAC("WebAppData", token)); aiogram checks that signature. On top, the
data must be fresh (`auth_date` within TELEGRAM_WEBAPP_MAX_AGE_S) and the user allowed. (A browser
comes in with the API token's login cookie instead: api/routes/webapp.py.)

The graph is the execution's live node states (`get_execution`) joined with the edges of the spec
it started with (its first input, read once per execution: an execution's spec never changes).
"""

from datetime import UTC, datetime

from aiogram.utils.web_app import WebAppUser, safe_parse_webapp_init_data
from temporalio.client import Client

from contracts.dag import DagSpec
from contracts.dag_executions import ExecutionGraph, GraphShape, NodeKind
from core.settings import Settings
from services import dag_executions
from services.dag_resume import first_input
from services.read_cache import ReadCache
from services.telegram_access import is_allowed

SHAPES: ReadCache[GraphShape] = ReadCache(max_entries=256)
"""The shape of recently drawn executions: the page asks again at every node's end."""


class InitDataRefused(Exception):
    """The request cannot be trusted (401) or comes from someone not allowed (403)."""

    def __init__(self, message: str, *, forbidden: bool = False) -> None:
        super().__init__(message)
        self.forbidden = forbidden


def verify(settings: Settings, init_data: str | None, *, now: datetime | None = None) -> WebAppUser:
    """The signed-in Telegram user, or InitDataRefused saying why not."""
    if settings.telegram_bot_token is None:
        raise InitDataRefused("the Telegram bot is not configured")
    if not init_data:
        raise InitDataRefused("missing Telegram initData")
    try:
        data = safe_parse_webapp_init_data(settings.telegram_bot_token.get_secret_value(), init_data)
    except ValueError:
        raise InitDataRefused("initData signature is invalid") from None
    age = (now or datetime.now(UTC)) - data.auth_date.astimezone(UTC)
    if age.total_seconds() > settings.telegram_webapp_max_age_s:
        raise InitDataRefused("initData has expired; reopen the Web App")
    if data.user is None:
        raise InitDataRefused("initData names no user")
    if not is_allowed(settings, data.user.id):
        raise InitDataRefused("this Telegram user may not use goalflow", forbidden=True)
    return data.user


def shape_of(spec: DagSpec) -> GraphShape:
    """Edges and node kinds of a spec (an approval node is a tool node that waits for a person)."""
    kinds: dict[str, NodeKind] = {
        node.id: "approval" if node.requires_approval else "agent" if node.agent else "tool"
        for node in spec.nodes
    }
    edges = [(dependency, node.id) for node in spec.nodes for dependency in node.depends_on]
    return GraphShape(edges=edges, kinds=kinds)


async def execution_graph(client: Client, settings: Settings, execution_id: str) -> ExecutionGraph:
    """The execution's nodes with their live state, and the edges between them."""
    detail = await dag_executions.get_execution(client, settings, execution_id)

    async def load() -> GraphShape:
        started = await first_input(client, execution_id)
        return shape_of(started.spec) if started is not None else GraphShape()

    shape = await SHAPES.get((client.namespace, execution_id, detail.started_at), load)
    return ExecutionGraph(execution=detail, edges=shape.edges, kinds=shape.kinds)
