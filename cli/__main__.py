"""Operator commands: `python -m cli rotate-keys`, `python -m cli rotate-codec-key`.

Rotating keys: put a new Fernet key first in ENCRYPTION_KEYS (`NEW,OLD`), run `rotate-keys` so
every stored provider key is re-encrypted with it, then drop OLD from ENCRYPTION_KEYS.
Rotating the payload key: `rotate-codec-key` puts a new key first in CODEC_KEYS; Temporal's
history cannot be re-encrypted, so older keys stay (they decrypt what they wrote) until every run
they wrote is past the namespace's retention.
"""

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence

from core.codec import new_codec_key
from core.crypto import CryptoError, check_keys
from core.db import dispose_engines, session_scope
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
