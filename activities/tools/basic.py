"""`noop` and `current_time`: pure tools, cheap enough to run as local activities."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from activities.tools.base import ToolError, make_tool
from contracts.tool_inputs import CurrentTimeInput, NoopInput
from contracts.tools import TIMEZONE_INVALID


async def noop(args: NoopInput) -> Any:
    return args.value


async def current_time(args: CurrentTimeInput) -> dict[str, Any]:
    try:
        zone = ZoneInfo(args.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        # ValueError covers keys that are not even paths (`../x`, absolute paths).
        raise ToolError(
            f"unknown time zone {args.timezone!r}; use an IANA name such as 'Europe/Berlin'",
            kind=TIMEZONE_INVALID,
        ) from None
    now = datetime.now(UTC).astimezone(zone)
    return {
        "timezone": args.timezone,
        "iso": now.isoformat(),
        "unix": now.timestamp(),
        "weekday": now.strftime("%A"),
        "utc_offset": now.strftime("%z"),
    }


NOOP = make_tool(
    name="noop",
    description="Return the given value unchanged (for tests and benchmarks).",
    input_model=NoopInput,
    impl=noop,
)
CURRENT_TIME = make_tool(
    name="current_time",
    description="The current date and time in an IANA time zone.",
    input_model=CurrentTimeInput,
    impl=current_time,
)
