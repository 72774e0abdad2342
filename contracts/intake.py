"""Chat intake: what MessageWorkflow, its activities, the API and the bot share.

A message is classified (category, urgency, is_task, title) and its entities extracted (people,
dates and times, amounts, links) by two ordinary versioned agents, `classifier` and `extractor`,
each answering a fixed JSON schema kept small enough for the embedded 135M model. Pure Pydantic
and pure functions: safe inside the workflow sandbox.
"""

import datetime as dt
import re
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, Field

from contracts.agents import AgentSnapshot
from contracts.intake_dates import resolve
from contracts.usage import TokenUsage

RUN_KIND_MESSAGE = "message"
CLASSIFIER_AGENT = "classifier"
EXTRACTOR_AGENT = "extractor"
MAX_MESSAGE_CHARS = 4096
"""Telegram's own limit, so any chat message fits."""
TITLE_CHARS = 80


class MessageSource(StrEnum):
    api = "api"
    telegram = "telegram"
    webapp = "webapp"


class Category(StrEnum):
    """What a message is about (independent of whether it asks for something to be done)."""

    work = "work"
    personal = "personal"
    shopping = "shopping"
    finance = "finance"
    health = "health"
    travel = "travel"
    social = "social"
    information = "information"
    other = "other"


CATEGORY_MEANINGS: dict[Category, str] = {
    Category.work: "jobs, projects, colleagues, meetings at work",
    Category.personal: "home, family, errands, chores, personal admin",
    Category.shopping: "things to buy or order",
    Category.finance: "bills, payments, invoices, money owed or sent",
    Category.health: "doctors, medicine, sport, wellbeing",
    Category.travel: "trips, tickets, bookings, commuting",
    Category.social: "friends, invitations, birthdays, greetings",
    Category.information: "news, facts or links shared, nothing to do",
    Category.other: "anything else",
}
"""The documented category set (README "Chat intake"); the classifier must pick one."""


class Urgency(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


class Classification(BaseModel):
    """The classifier's answer, checked."""

    title: str = Field(min_length=1, max_length=200)
    is_task: bool
    category: Category
    urgency: Urgency


CLASSIFICATION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": TITLE_CHARS},
        "is_task": {"type": "boolean"},
        "category": {"type": "string", "enum": [c.value for c in Category]},
        "urgency": {"type": "string", "enum": [u.value for u in Urgency]},
    },
    "required": ["title", "is_task", "category", "urgency"],
    "additionalProperties": False,
}
"""What the classifier answers; property order is generation order for a constrained model."""

EXTRACTION_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "people": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 8},
        "dates": {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 4},
        "amounts": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {"type": "number"}, "currency": {"type": "string", "maxLength": 8}},
                "required": ["value", "currency"],
                "additionalProperties": False,
            },
            "maxItems": 4,
        },
        "links": {"type": "array", "items": {"type": "string", "maxLength": 500}, "maxItems": 8},
    },
    "required": ["people", "dates", "amounts", "links"],
    "additionalProperties": False,
}
"""What the extractor answers: the expressions as written; dates are resolved in code."""


class RawAmount(BaseModel):
    value: float
    currency: str = ""


class RawEntities(BaseModel):
    """The extractor's answer, checked (before dates are resolved and names confirmed)."""

    people: list[str] = []
    dates: list[str] = []
    amounts: list[RawAmount] = []
    links: list[str] = []


class DateEntity(BaseModel):
    """A date or time expression and what it means for the moment the message was sent."""

    text: str
    date: dt.date | None = None
    time: dt.time | None = None
    at: datetime | None = None
    """Day and time together, in the offset of the message's timestamp, when both are known."""


class Amount(BaseModel):
    value: float
    currency: str | None = None
    """ISO 4217 code when recognised (symbols are mapped: € → EUR)."""


class Entities(BaseModel):
    people: list[str] = []
    dates: list[DateEntity] = []
    amounts: list[Amount] = []
    links: list[str] = []


CURRENCY_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "₽": "RUB", "₹": "INR", "₴": "UAH"}
CURRENCY_WORDS = {"euro": "EUR", "euros": "EUR", "dollar": "USD", "dollars": "USD", "pound": "GBP"}
_LINK = re.compile(r"https?://[^\s<>\"')\]]+")


def _currency(raw: str) -> str | None:
    text = raw.strip()
    if text in CURRENCY_SYMBOLS:
        return CURRENCY_SYMBOLS[text]
    if text.lower() in CURRENCY_WORDS:
        return CURRENCY_WORDS[text.lower()]
    return text.upper() if re.fullmatch(r"[A-Za-z]{3}", text) else None


def resolve_entities(raw: RawEntities, *, text: str, sent_at: datetime) -> Entities:
    """The extractor's answer made trustworthy: people only if the message names them, dates
    resolved against `sent_at`, currencies as ISO codes, links that are URLs (plus any URL the
    message contains that the model missed)."""
    lowered = text.lower()
    people: dict[str, str] = {}
    for name in (p.strip() for p in raw.people):
        if name and name.lower() in lowered:
            people.setdefault(name.lower(), name)
    dates = []
    for expression in dict.fromkeys(d.strip() for d in raw.dates if d.strip()):
        day, clock = resolve(expression, sent_at)
        at = datetime.combine(day, clock, tzinfo=sent_at.tzinfo) if day and clock else None
        dates.append(DateEntity(text=expression, date=day, time=clock, at=at))
    found = [link.strip() for link in raw.links if _LINK.fullmatch(link.strip())] + _LINK.findall(text)
    links = list(dict.fromkeys(link.rstrip(".,;:!?") for link in found))
    amounts = [Amount(value=a.value, currency=_currency(a.currency)) for a in raw.amounts]
    return Entities(people=list(people.values()), dates=dates, amounts=amounts, links=links)


def _stamp(sent_at: datetime) -> str:
    return f"{sent_at.strftime('%A')} {sent_at.isoformat(timespec='minutes')}"


def classification_prompt(text: str, sent_at: datetime) -> str:
    """What the classifier is asked (its own system prompt comes first as instructions)."""
    categories = "\n".join(f"- {c.value}: {meaning}" for c, meaning in CATEGORY_MEANINGS.items())
    return (
        "Classify this chat message. Answer with JSON: title (a short title of at most "
        f"{TITLE_CHARS} characters), is_task (true if it asks for something to be done), category "
        "(one of the list), urgency (low, normal or high).\n"
        f"Categories:\n{categories}\n\n"
        'Example: "Pay the electricity bill by Friday" -> {"title": "Pay the electricity bill", '
        '"is_task": true, "category": "finance", "urgency": "normal"}\n\n'
        f"Message (sent {_stamp(sent_at)}):\n{text}"
    )


def extraction_prompt(text: str, sent_at: datetime) -> str:
    """What the extractor is asked: the expressions as written, no arithmetic."""
    return (
        "Extract from this chat message, as JSON: people (names of people mentioned), dates "
        "(each date or time expression exactly as written), amounts (each sum of money as value "
        "and currency), links (each URL). Use empty lists for what is not there.\n\n"
        'Example: "Send Anna 20 EUR tomorrow at 5pm" -> {"people": ["Anna"], '
        '"dates": ["tomorrow at 5pm"], "amounts": [{"value": 20, "currency": "EUR"}], "links": []}\n\n'
        f"Message (sent {_stamp(sent_at)}):\n{text}"
    )


class MessageInput(BaseModel):
    """MessageWorkflow's input; new fields get defaults so old histories still decode."""

    message_id: int
    text: str = Field(min_length=1, max_length=MAX_MESSAGE_CHARS)
    sent_at: datetime
    classifier: str = CLASSIFIER_AGENT
    extractor: str = EXTRACTOR_AGENT
    waits: int = 0
    """Waits for a usable provider so far (carried across continue-as-new, for the backoff)."""


class IntakeAgents(BaseModel):
    """The classifier and extractor versions pinned for one attempt, and how each answers."""

    classifier: AgentSnapshot
    extractor: AgentSnapshot
    native: list[str] = []
    """Names of the agents whose provider answers in native JSON-schema mode (the local model);
    the others answer through an output tool."""


ProgressStage = Literal["analysing", "waiting_for_provider", "failed"]


class MessageProgress(BaseModel):
    """A step of a message's processing: stored on the message and published as `run.progress`."""

    message_id: int
    workflow_id: str
    stage: ProgressStage
    reason: str | None = None
    retry_in_s: float | None = None


class MessageAnalysis(BaseModel):
    """What the agents found, stored on the message (which becomes `classified`)."""

    message_id: int
    workflow_id: str
    classification: Classification
    entities: Entities
    classifier_version: int
    extractor_version: int
    usage: TokenUsage = TokenUsage()


class Priority(StrEnum):
    low = "low"
    normal = "normal"
    high = "high"


def task_from_message(analysis: MessageAnalysis, *, text: str, sent_at: datetime) -> "NewTask":
    """The task a message that is a task becomes: its title, the message as description, its
    urgency as priority, the first date it names as due time (a day alone: the end of that day
    in the message's offset), and the people it names as assignees."""
    due: datetime | None = None
    for found in analysis.entities.dates:
        if found.at is not None:
            due = found.at
        elif found.date is not None:
            due = datetime.combine(found.date, dt.time(23, 59), tzinfo=sent_at.tzinfo)
        if due is not None:
            break
    return NewTask(
        message_id=analysis.message_id,
        title=analysis.classification.title[:200],
        description=text,
        priority=Priority(analysis.classification.urgency.value),
        due_at=due,
        assignees=analysis.entities.people,
    )


class NewTask(BaseModel):
    """A task to create from a message; keyed by the message, so a retry finds the first one."""

    message_id: int
    title: str
    description: str = ""
    priority: Priority = Priority.normal
    due_at: datetime | None = None
    assignees: list[str] = []


class StoreAnalysisInput(BaseModel):
    analysis: MessageAnalysis
    task: NewTask | None = None
    """The task to create when the message is one."""


class MessageOutcome(BaseModel):
    """MessageWorkflow's result."""

    message_id: int
    status: Literal["classified", "failed"]
    classification: Classification | None = None
    entities: Entities | None = None
    task_id: int | None = None
    reason: str | None = None
    usage: TokenUsage = TokenUsage()
