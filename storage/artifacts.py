"""Artifacts: files under ARTIFACTS_DIR with a metadata row each.

Anything that stores a file — the `write_artifact` tool, large tool outputs, uploads through
`POST /task` — goes through `save_artifact`, so names are checked in one place and a file never
lands outside the artifacts directory.
"""

import asyncio
import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from contracts.tool_inputs import MAX_ARTIFACT_BYTES, MAX_ARTIFACT_NAME_LENGTH
from core.errors import Invalid, NotFound
from core.models.artifact import Artifact
from core.models.common import utcnow
from core.settings import Settings

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ +=@,-]*$")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")
TEXT_DEFAULT = "text/plain; charset=utf-8"


class ArtifactNameInvalid(Invalid):
    """A name that could escape the artifacts directory or is not a plain file name."""


def check_name(name: str) -> str:
    """The name itself if it is a plain file name; otherwise ArtifactNameInvalid saying why.

    Refuses separators, traversal, NUL, absolute paths and their percent-encoded spellings
    rather than "fixing" them, so a caller never writes somewhere other than it asked.
    """
    if not name:
        raise ArtifactNameInvalid("artifact name must not be empty")
    if len(name) > MAX_ARTIFACT_NAME_LENGTH:
        raise ArtifactNameInvalid(f"artifact name longer than {MAX_ARTIFACT_NAME_LENGTH} characters")
    decoded = name
    for _ in range(3):  # double-encoded `%252e%252e` is still traversal
        decoded = unquote(decoded)
    for form in (name, decoded, unicodedata.normalize("NFKC", decoded)):
        if "\x00" in form:
            raise ArtifactNameInvalid("artifact name must not contain NUL")
        if "/" in form or "\\" in form:
            raise ArtifactNameInvalid("artifact name must not contain path separators")
        if ".." in form:
            raise ArtifactNameInvalid("artifact name must not contain '..'")
    if not _SAFE_NAME.fullmatch(name):
        raise ArtifactNameInvalid(
            "artifact name must start with a letter or digit and use only letters, digits, spaces and ._+=@,-"
        )
    return name


def safe_name(raw: str, *, suffix: str = "") -> str:
    """A valid artifact name derived from arbitrary text (workflow and activity ids)."""
    stem = _UNSAFE_CHARS.sub("_", raw).strip("._-") or "artifact"
    stem = stem.replace("..", "_")
    return check_name(stem[: MAX_ARTIFACT_NAME_LENGTH - len(suffix)] + suffix)


def artifact_path(settings: Settings, name: str) -> Path:
    """Where a named artifact lives, proven to be inside ARTIFACTS_DIR."""
    root = settings.artifacts_dir.resolve()
    path = (root / check_name(name)).resolve()
    if path.parent != root:
        raise ArtifactNameInvalid("artifact name resolves outside the artifacts directory")
    return path


def guess_content_type(name: str) -> str:
    """The content type for a file name; text for anything unrecognised."""
    content_type, _ = mimetypes.guess_type(name, strict=False)
    if content_type is None:
        return TEXT_DEFAULT
    if content_type.startswith("text/") and "charset" not in content_type:
        return f"{content_type}; charset=utf-8"
    return content_type


def _write_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write then rename, so a reader never sees half a file and a crash leaves the old one.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


async def save_artifact(
    session: AsyncSession,
    settings: Settings,
    *,
    name: str,
    content: bytes | str,
    content_type: str | None = None,
    workflow_id: str | None = None,
    node_id: str | None = None,
) -> Artifact:
    """Store `content` under `name` (replacing an artifact of that name) and record it.

    Args:
        session: Committed here.
        settings: For ARTIFACTS_DIR.
        name: A plain file name; ArtifactNameInvalid (an `Invalid`) otherwise.
        content: Text is stored as UTF-8.
        content_type: Defaults to a guess from the name's extension.
        workflow_id: The run that produced it, if any.
        node_id: The DAG node or activity that produced it, if any.
    """
    data = content.encode() if isinstance(content, str) else content
    if len(data) > MAX_ARTIFACT_BYTES:
        raise Invalid(f"artifact larger than {MAX_ARTIFACT_BYTES} bytes")
    path = artifact_path(settings, name)
    await asyncio.to_thread(_write_file, path, data)
    values: dict[str, Any] = {
        "content_type": content_type or guess_content_type(name),
        "size_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "workflow_id": workflow_id,
        "node_id": node_id,
        # An overwrite is a new version of the artifact; it sorts as new.
        "created_at": utcnow(),
    }
    for attempt in range(2):
        row = (await session.exec(select(Artifact).where(Artifact.name == name))).first()
        if row is None:
            row = Artifact(name=name, **values)
        else:
            row.sqlmodel_update(values)
        session.add(row)
        try:
            await session.commit()
        except IntegrityError:
            # A concurrent writer created the same name first; update its row instead.
            await session.rollback()
            if attempt:
                raise
            continue
        await session.refresh(row)
        return row
    raise AssertionError("unreachable")


async def get_artifact(session: AsyncSession, name: str) -> Artifact:
    """The metadata row of a named artifact, or NotFound."""
    check_name(name)
    row = (await session.exec(select(Artifact).where(Artifact.name == name))).first()
    if row is None:
        raise NotFound(f"artifact {name!r} not found")
    return row


async def read_artifact(session: AsyncSession, settings: Settings, name: str) -> tuple[Artifact, bytes]:
    """An artifact's row and bytes; NotFound if either is missing."""
    row = await get_artifact(session, name)
    path = artifact_path(settings, name)
    try:
        data = await asyncio.to_thread(path.read_bytes)
    except FileNotFoundError:
        raise NotFound(f"artifact {name!r} has no file") from None
    return row, data


async def list_artifacts(session: AsyncSession, *, limit: int, offset: int) -> list[Artifact]:
    """Artifacts, newest first."""
    query = (
        select(Artifact)
        .order_by(col(Artifact.created_at).desc(), col(Artifact.id).desc())
        .limit(limit)
        .offset(offset)
    )
    return list((await session.exec(query)).all())
