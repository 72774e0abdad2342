"""Readable workflow ids (SPEC §5): `<kind>-<id>-<shortid>`."""

import secrets


def short_id() -> str:
    """Eight hex characters: short enough to read, enough to never collide per resource."""
    return secrets.token_hex(4)
