"""Date and time expressions resolved against the moment a message was sent (its own offset)."""

from datetime import date, datetime, time, timedelta, timezone

import pytest

from contracts.intake import RawAmount, RawEntities, resolve_entities
from contracts.intake_dates import resolve

SENT = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))  # Monday 10:00 +01:00


@pytest.mark.parametrize(
    ("expression", "day", "clock"),
    [
        ("tomorrow at 5pm", date(2026, 3, 3), time(17, 0)),
        ("day after tomorrow 9am", date(2026, 3, 4), time(9, 0)),
        ("today", date(2026, 3, 2), None),
        ("tonight", date(2026, 3, 2), time(20, 0)),
        ("at 5", date(2026, 3, 2), time(17, 0)),  # "at 5" in a chat: the afternoon
        ("9:30", date(2026, 3, 3), time(9, 30)),  # already past today: tomorrow
        ("17:30", date(2026, 3, 2), time(17, 30)),
        ("noon", date(2026, 3, 2), time(12, 0)),
        ("in 2 hours", date(2026, 3, 2), time(12, 0)),
        ("in three days", date(2026, 3, 5), None),
        ("Friday", date(2026, 3, 6), None),
        ("next friday at 6:15 pm", date(2026, 3, 6), time(18, 15)),
        ("Monday morning", date(2026, 3, 9), time(9, 0)),  # said on a Monday: the next one
        ("this Monday", date(2026, 3, 2), None),
        ("5 March", date(2026, 3, 5), None),
        ("March 1st", date(2027, 3, 1), None),  # passed this year: next year's
        ("the 12th of April 2026", date(2026, 4, 12), None),
        ("12.03.2026", date(2026, 3, 12), None),
        ("2026-03-05", date(2026, 3, 5), None),
        ("2026-03-05 14:00", date(2026, 3, 5), time(14, 0)),
        ("2026-03-05T14:00:00Z", date(2026, 3, 5), time(15, 0)),  # read in the message's offset
        ("next week", date(2026, 3, 9), None),
        ("31 February", None, None),
        ("whenever", None, None),
    ],
)
def test_expressions_resolve_against_the_send_time(
    expression: str, day: date | None, clock: time | None
) -> None:
    assert resolve(expression, SENT) == (day, clock)


def test_entities_keep_only_what_the_message_contains_resolve_dates_and_normalise_currencies() -> None:
    raw = RawEntities(  # what a small model answers: part right, part copied from its examples
        people=["Anna", " anna ", "Ben"],
        dates=["tomorrow at 5pm", "Monday at 10am", "at 5PM"],
        amounts=[
            RawAmount(value=84.2, currency="€"),
            RawAmount(value=1000, currency="usd"),
            RawAmount(value=15, currency="USD"),
        ],
        links=["https://news.example.org/a", "https://a.example/x"],
    )
    text = "Pay Anna 84.20€ and 1,000 USD tomorrow at 5pm, see https://a.example/x and http://b.example/y."
    entities = resolve_entities(raw, text=text, sent_at=SENT)
    assert entities.people == ["Anna"]
    assert [(d.text, d.at) for d in entities.dates] == [
        ("tomorrow at 5pm", datetime(2026, 3, 3, 17, 0, tzinfo=SENT.tzinfo)),
        ("at 5PM", datetime(2026, 3, 2, 17, 0, tzinfo=SENT.tzinfo)),
    ]
    assert [(a.value, a.currency) for a in entities.amounts] == [(84.2, "EUR"), (1000, "USD")]
    assert entities.links == ["https://a.example/x", "http://b.example/y"]
