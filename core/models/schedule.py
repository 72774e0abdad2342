"""Field types for anything that runs on a cron (goals, DAGs): checked once, here."""

from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter
from pydantic import AfterValidator

CRON_DESCRIPTORS = frozenset({"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly"})


def check_cron(value: str) -> str:
    """A standard 5-field cron (or an @daily-style descriptor) that Temporal also accepts."""
    value = " ".join(value.split())
    if value in CRON_DESCRIPTORS:
        return value
    if len(value.split()) != 5 or not croniter.is_valid(value):
        raise ValueError(f"{value!r} is not a 5-field cron expression")
    return value


def check_timezone(value: str) -> str:
    """An IANA time zone name the server and zoneinfo both know."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value


CronExpr = Annotated[str, AfterValidator(check_cron)]
TimeZoneName = Annotated[str, AfterValidator(check_timezone)]
