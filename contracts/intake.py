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
"""The documented category set (docs/intake.md); the classifier must pick one."""


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


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"[\w']+")


def _numbers_in(text: str) -> set[float]:
    """Every number a text writes: 84.20, 84,20 and 1,000 / 1.000 (thousands) alike."""
    found: set[float] = set()
    for written in _NUMBER.findall(text):
        for candidate in (written.replace(",", "."), written.replace(",", "").replace(".", "")):
            if candidate.count(".") <= 1:
                found.add(float(candidate))
    return found


def _written_in(expression: str, words: set[str]) -> bool:
    """Whether every word of an expression is a word of the message."""
    needed = {w.lower() for w in _WORD.findall(expression)}
    return bool(needed) and needed <= words


def resolve_entities(raw: RawEntities, *, text: str, sent_at: datetime) -> Entities:
    """The extractor's answer made trustworthy: only people, date expressions, sums and links the
    message itself contains (a small model copies its examples and makes things up), dates
    resolved against `sent_at`, currencies as ISO codes, and every URL of the text."""
    lowered = text.lower()
    words = {w.lower() for w in _WORD.findall(text)}
    people: dict[str, str] = {}
    for name in (p.strip() for p in raw.people):
        if name and _written_in(name, words):
            people.setdefault(name.lower(), name)
    dates = []
    for expression in dict.fromkeys(d.strip() for d in raw.dates if d.strip()):
        if not (_written_in(expression, words) or expression.lower() in lowered):
            continue
        day, clock = resolve(expression, sent_at)
        at = datetime.combine(day, clock, tzinfo=sent_at.tzinfo) if day and clock else None
        dates.append(DateEntity(text=expression, date=day, time=clock, at=at))
    numbers = _numbers_in(text)
    kept = {
        (a.value, _currency(a.currency)): None
        for a in raw.amounts
        if any(abs(a.value - n) < 1e-9 for n in numbers)
    }
    amounts = [Amount(value=value, currency=currency) for value, currency in kept]
    in_text = [link.rstrip(".,;:!?") for link in _LINK.findall(text)]
    links = list(dict.fromkeys([*(link.strip() for link in raw.links if link.strip() in in_text), *in_text]))
    return Entities(people=list(people.values()), dates=dates, amounts=amounts, links=links)


ANSWER_CUE = "\nJSON:"
"""The end of every intake prompt: a small model continues with the JSON, as in the examples."""

CLASSIFICATION_EXAMPLES = (
    (
        "Remind me to call the bank on Monday",
        Classification(
            title="Call the bank", is_task=True, category=Category.finance, urgency=Urgency.normal
        ),
    ),
    (
        "Lunch with Sara was lovely today",
        Classification(title="Lunch with Sara", is_task=False, category=Category.social, urgency=Urgency.low),
    ),
    (
        "Send the report to the team before 9am, it is urgent",
        Classification(title="Send the report", is_task=True, category=Category.work, urgency=Urgency.high),
    ),
)
EXTRACTION_EXAMPLES = (
    (
        "Send Ben 15 USD on Monday at 10am",
        RawEntities(people=["Ben"], dates=["Monday at 10am"], amounts=[RawAmount(value=15, currency="USD")]),
    ),
    ("Nice weather here", RawEntities()),
    (
        "Read https://news.example.org/a tonight",
        RawEntities(dates=["tonight"], links=["https://news.example.org/a"]),
    ),
)


def _stamp(sent_at: datetime) -> str:
    return f"{sent_at.strftime('%A')} {sent_at.isoformat(timespec='minutes')}"


def _shots(examples: tuple[tuple[str, BaseModel], ...]) -> str:
    return "\n".join(f"Message: {m}\nJSON: {answer.model_dump_json()}" for m, answer in examples)


def classification_prompt(text: str, sent_at: datetime) -> str:
    """What the classifier is asked (its own system prompt comes first as instructions): the
    fields, the categories, worked examples, then the message (last: a small model answers what
    it read last)."""
    categories = "\n".join(f"- {c.value}: {meaning}" for c, meaning in CATEGORY_MEANINGS.items())
    return (
        f"Classify a chat message as JSON: title (short, at most {TITLE_CHARS} characters), is_task "
        "(true if it asks for something to be done), category (one of the list), urgency (low, "
        f"normal or high).\nCategories:\n{categories}\n\n{_shots(CLASSIFICATION_EXAMPLES)}\n\n"
        f"Message (sent {_stamp(sent_at)}): {text}{ANSWER_CUE}"
    )


def extraction_prompt(text: str, sent_at: datetime) -> str:
    """What the extractor is asked: the expressions as written (the code does the calendar)."""
    return (
        "Extract from a chat message as JSON: people (names of people in it), dates (each date or "
        "time expression exactly as written), amounts (each sum of money: value and currency), "
        "links (each URL). Empty lists for what is not there.\n\n"
        f"{_shots(EXTRACTION_EXAMPLES)}\n\n"
        f"Message (sent {_stamp(sent_at)}): {text}{ANSWER_CUE}"
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
