"""Operator commands: `python -m cli rotate-keys`, `python -m cli rotate-codec-key`,
`python -m cli raise-budget EXECUTION_ID MAX_TOKENS`, `python -m cli replay --since 7d`.

Rotating keys: put a new Fernet key first in ENCRYPTION_KEYS (`NEW,OLD`), run `rotate-keys` so
every stored provider key is re-encrypted with it, then drop OLD from ENCRYPTION_KEYS.
Raising a token budget: `raise-budget` sends DagWorkflow's `raise_budget_signal` (what
`temporal workflow signal --name raise_budget_signal` would send) after checking the new budget is
above what the execution used; an execution paused at its budget (`on_budget: "ask"`) goes on.
Rotating the payload key: `rotate-codec-key` puts a new key first in CODEC_KEYS; Temporal's
history cannot be re-encrypted, so older keys stay (they decrypt what they wrote) until every run
they wrote is past the namespace's retention.
Checking a release: `replay` replays the history of every run started in the window (running or
closed) against the workflow code of this checkout, exactly as its worker would; exit 1 names
each run that would be held (its workflow task failing) if this code were deployed.
"""

import argparse
import asyncio
import os
import re
import sys
from collections.abc import Sequence
from datetime import timedelta

from pydantic import ValidationError

from core.codec import new_codec_key
from core.crypto import CryptoError, check_keys
from core.db import dispose_engines, session_scope
from core.errors import DomainError
from core.processes import exit_now
from core.settings import GENERATED_ENV, get_settings


async def _rotate_keys() -> int:
    settings = get_settings()
    check_keys(settings)  # fail fast, before loading the LLM stack the services pull in
    from services.providers import rotate_keys  # imported late: keeps `--help` fast

    try:
        async with session_scope(settings) as session:
            return await rotate_keys(session, settings)
    finally:
        await dispose_engines()


def _rotate_codec_key() -> str:
    """Put a new key first in CODEC_KEYS: in data/generated.env when the key was generated there
    (dev), else answer the value to set (the environment or .env is the operator's)."""
    current = get_settings().codec_keys
    keys = ",".join(filter(None, [new_codec_key(), current.get_secret_value() if current else ""]))
    generated = GENERATED_ENV.read_text().splitlines() if GENERATED_ENV.exists() else []
    if "CODEC_KEYS" not in os.environ and any(line.startswith("CODEC_KEYS=") for line in generated):
        lines = [f"CODEC_KEYS={keys}" if line.startswith("CODEC_KEYS=") else line for line in generated]
        GENERATED_ENV.write_text("\n".join(lines) + "\n")
        return f"new payload key first in CODEC_KEYS in {GENERATED_ENV}; restart `make run`"
    return f"set CODEC_KEYS={keys} (newest first) for every process, then restart them"


async def _raise_budget(execution_id: str, max_tokens: int, comment: str) -> str:
    from contracts.dag import BudgetRaise  # imported late: keeps `--help` fast
    from core.temporal import connect
    from services.dag_executions import signal_raise_budget

    client = await connect(get_settings())
    request = BudgetRaise(max_tokens_per_run=max_tokens, comment=comment)
    status = await signal_raise_budget(client, execution_id, request)
    return (
        f"signalled {execution_id}: token budget {status.max_tokens_per_run} -> {max_tokens} "
        f"({status.usage.total_tokens} used)"
    )


WINDOW_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def _window(text: str) -> timedelta:
    """`7d`, `12h`, `30m`... as a timedelta (argparse's type: a bad value is a usage error)."""
    match = re.fullmatch(r"(\d+)([smhdw])", text.strip())
    if match is None or int(match[1]) == 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a window like 7d, 12h or 30m")
    return timedelta(**{WINDOW_UNITS[match[2]]: int(match[1])})


async def _replay(
    since: timedelta, namespace: str | None, query: str | None, limit: int | None
) -> tuple[int, list[str]]:
    """(runs replayed, a line for each that does not replay) against this checkout's code."""
    from core.replay import replay_query, since_clause  # imported late: keeps `--help` fast
    from core.temporal import connect
    from worker import build_replayer

    settings = get_settings()
    if namespace:
        settings = settings.model_copy(update={"temporal_namespace": namespace})
    client = await connect(settings)
    listed = since_clause(since) + (f" AND ({query})" if query else "")
    outcomes = await replay_query(client, build_replayer(settings), listed, limit=limit)
    failed = [f"{o.workflow_id} ({o.workflow_type}, run {o.run_id}): {o.error}" for o in outcomes if o.error]
    return len(outcomes), failed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "rotate-keys",
        help="re-encrypt every stored provider API key with the first ENCRYPTION_KEYS entry",
        description="Re-encrypt every stored provider API key with the first ENCRYPTION_KEYS "
        "entry, so older keys can then be removed from ENCRYPTION_KEYS.",
    )
    commands.add_parser(
        "rotate-codec-key",
        help="put a new key first in CODEC_KEYS (Temporal payloads); older keys keep decrypting",
    )
    budget = commands.add_parser(
        "raise-budget",
        help="raise a DAG execution's token budget (signal); one paused at its budget goes on",
    )
    budget.add_argument("execution_id", help="the execution (workflow) id, dag-<dagId>-<shortid>")
    budget.add_argument("max_tokens", type=int, help="the new max_tokens_per_run, above what was used")
    budget.add_argument("--comment", default="", help="why (shown in the execution's events)")
    replay = commands.add_parser(
        "replay",
        help="replay recent runs' histories against this code (check a release before shipping)",
    )
    replay.add_argument("--since", type=_window, default=timedelta(days=7), help="window (default 7d)")
    replay.add_argument("--namespace", help="Temporal namespace (default TEMPORAL_NAMESPACE)")
    replay.add_argument("--query", help="a visibility filter too, e.g. \"WorkflowType = 'DagWorkflow'\"")
    replay.add_argument("--limit", type=int, help="replay at most this many runs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the exit status is 0 on success, 1 when secrets cannot be handled."""
    args = _parser().parse_args(argv)
    if args.command == "rotate-keys":
        try:
            count = asyncio.run(_rotate_keys())
        except CryptoError as exc:  # the message names the setting, never a key
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"re-encrypted {count} provider API key(s) with the newest ENCRYPTION_KEYS entry")
    elif args.command == "rotate-codec-key":
        print(_rotate_codec_key())
    elif args.command == "raise-budget":
        try:
            print(asyncio.run(_raise_budget(args.execution_id, args.max_tokens, args.comment)))
        except (DomainError, ValidationError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.command == "replay":
        count, failed = asyncio.run(_replay(args.since, args.namespace, args.query, args.limit))
        for line in failed:
            print(f"does not replay: {line}")
        print(f"{count - len(failed)} of {count} run(s) replay on this code")
        return 1 if failed else 0
    return 0


if __name__ == "__main__":
    exit_now(main())
