"""Operator commands: `python -m cli rotate-keys`.

Rotating keys: put a new Fernet key first in ENCRYPTION_KEYS (`NEW,OLD`), run `rotate-keys` so
every stored provider key is re-encrypted with it, then drop OLD from ENCRYPTION_KEYS.
"""

import argparse
import asyncio
import sys
from collections.abc import Sequence

from core.crypto import CryptoError, check_keys
from core.db import dispose_engines, session_scope
from core.settings import get_settings


async def _rotate_keys() -> int:
    settings = get_settings()
    check_keys(settings)  # fail fast, before loading the LLM stack the services pull in
    from services.providers import rotate_keys  # imported late: keeps `--help` fast

    try:
        async with session_scope(settings) as session:
            return await rotate_keys(session, settings)
    finally:
        await dispose_engines()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cli", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "rotate-keys",
        help="re-encrypt every stored provider API key with the first ENCRYPTION_KEYS entry",
        description="Re-encrypt every stored provider API key with the first ENCRYPTION_KEYS "
        "entry, so older keys can then be removed from ENCRYPTION_KEYS.",
    )
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
