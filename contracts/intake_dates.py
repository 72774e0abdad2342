"""Date and time expressions of a chat message resolved against the moment it was sent.

The extractor agent names the expressions as written ("tomorrow at 5pm", "next Friday",
"2026-03-05 14:00"); this module turns each into a calendar day and, when the expression has
one, a time of day. Deterministic, English only, and pure (it runs inside MessageWorkflow),
so a small model only has to find the words, never to do calendar arithmetic.
"""

import re
from datetime import date, datetime, time, timedelta

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
PARTS_OF_DAY = {
    "noon": time(12, 0),
    "midday": time(12, 0),
    "midnight": time(0, 0),
    "morning": time(9, 0),
    "afternoon": time(15, 0),
    "evening": time(18, 0),
    "tonight": time(20, 0),
}
"""What a part of the day means when no clock time is given."""

_MONTH = r"(jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_DAY = r"(\d{1,2})(?:st|nd|rd|th)?"
_RELATIVE = re.compile(r"\bin\s+(\d+|" + "|".join(NUMBER_WORDS) + r")\s+(minute|min|hour|day|week)s?\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DOTTED_DATE = re.compile(r"\b(\d{1,2})\.(\d{1,2})(?:\.(\d{4}|\d{2}))?\b")
_DAY_MONTH = re.compile(rf"\b{_DAY}\s+(?:of\s+)?{_MONTH}(?:,?\s+(\d{{4}}))?")
_MONTH_DAY = re.compile(rf"\b{_MONTH}\s+{_DAY}\b(?:,?\s+(\d{{4}}))?")
_WEEKDAY = re.compile(r"\b(next\s+|this\s+)?(mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*\b")
_CLOCK_12 = re.compile(r"\b(\d{1,2})(?:[:.](\d{2}))?\s*(a\.?m\.?|p\.?m\.?)(?![a-z])")
_CLOCK_24 = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_AT_HOUR = re.compile(r"\bat\s+(\d{1,2})\b(?!\s*[.:/-]?\d)")


def _month_number(name: str) -> int:
    return next(i for i, month in enumerate(MONTHS, start=1) if month.startswith(name[:3]))


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _upcoming(year: int | None, month: int, day: int, today: date) -> date | None:
    """A day named without a year is the next one on or after today."""
    if year is not None:
        return _safe_date(year, month, day)
    found = _safe_date(today.year, month, day)
    if found is not None and found < today:
        found = _safe_date(today.year + 1, month, day)
    return found


def _clock(text: str) -> time | None:
    """The time of day an expression names, if any."""
    if match := _CLOCK_12.search(text):
        hour, minute = int(match[1]), int(match[2] or 0)
        if not 1 <= hour <= 12 or minute > 59:
            return None
        if match[3].startswith("p") and hour != 12:
            hour += 12
        elif match[3].startswith("a") and hour == 12:
            hour = 0
        return time(hour, minute)
    if match := _CLOCK_24.search(text):
        hour, minute = int(match[1]), int(match[2])
        return time(hour, minute) if hour < 24 and minute < 60 else None
    if match := _AT_HOUR.search(text):
        hour = int(match[1])
        if 1 <= hour <= 7:
            hour += 12  # "at 5" in a chat means the afternoon
        return time(hour, 0) if hour < 24 else None
    for word, moment in PARTS_OF_DAY.items():
        if re.search(rf"\b{word}\b", text):
            return moment
    return None


def _day(text: str, today: date) -> date | None:
    """The calendar day an expression names, if any."""
    if "day after tomorrow" in text:
        return today + timedelta(days=2)
    if re.search(r"\btomorrow\b", text):
        return today + timedelta(days=1)
    if re.search(r"\b(today|tonight)\b", text):
        return today
    if re.search(r"\byesterday\b", text):
        return today - timedelta(days=1)
    if match := _ISO_DATE.search(text):
        return _safe_date(int(match[1]), int(match[2]), int(match[3]))
    if match := _DAY_MONTH.search(text):
        year = int(match[3]) if match[3] else None
        return _upcoming(year, _month_number(match[2]), int(match[1]), today)
    if match := _MONTH_DAY.search(text):
        year = int(match[3]) if match[3] else None
        return _upcoming(year, _month_number(match[1]), int(match[2]), today)
    if match := _DOTTED_DATE.search(text):
        year_text = match[3]
        year = None if year_text is None else int(year_text) + (2000 if len(year_text) == 2 else 0)
        return _upcoming(year, int(match[2]), int(match[1]), today)
    if match := _WEEKDAY.search(text):
        target = next(i for i, name in enumerate(WEEKDAYS) if name.startswith(match[2][:3]))
        ahead = (target - today.weekday()) % 7
        if ahead == 0 and not (match[1] or "").startswith("this"):
            ahead = 7  # "Friday" said on a Friday means the next one
        return today + timedelta(days=ahead)
    if re.search(r"\bnext week\b", text):
        return today + timedelta(days=7 - today.weekday())
    return None


def resolve(expression: str, sent_at: datetime) -> tuple[date | None, time | None]:
    """(day, time of day) an expression names, resolved against `sent_at` (timezone-aware; its
    offset is the one the expression is read in). A time without a day is the next such time;
    (None, None) when nothing is recognised."""
    text = " ".join(expression.lower().split())
    try:
        parsed = datetime.fromisoformat(expression.strip())
    except ValueError:
        parsed = None
    if parsed is not None:
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(sent_at.tzinfo)
        has_time = len(expression.strip()) > 10
        return parsed.date(), parsed.timetz().replace(tzinfo=None) if has_time else None
    if match := _RELATIVE.search(text):
        count = int(match[1]) if match[1].isdigit() else NUMBER_WORDS[match[1]]
        unit = {"min": "minutes", "minute": "minutes", "hour": "hours", "day": "days", "week": "weeks"}
        moment = sent_at + timedelta(**{unit[match[2]]: count})
        if match[2] in ("day", "week"):
            return moment.date(), _clock(text)
        return moment.date(), moment.time().replace(second=0, microsecond=0)
    today = sent_at.date()
    day, clock = _day(text, today), _clock(text)
    if day is None and clock is not None:
        day = today if clock > sent_at.time().replace(tzinfo=None) else today + timedelta(days=1)
    return day, clock
