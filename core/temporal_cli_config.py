"""The Temporal CLI's profile for `make run`'s stack, so `temporal workflow list` needs no flags.

Without it a newcomer must pass `--address` (the stack may run on any port), `--namespace`, and
`--codec-endpoint` with `--codec-auth "Bearer <token>"` (payloads are encrypted) to every command,
or read ciphertext. The CLI's environment configuration (the TOML file `temporal config set`
writes) holds exactly those four values per profile, so the launcher writes them there.

The file belongs to the user, so it is edited, never replaced: other profiles, comments and
layout stay (tomlkit). The `default` profile is written only when there is none, or when the one
there carries goalflow's marker comment on its header line (goalflow wrote it on an earlier
start, maybe for other ports); a `default` profile of the user's own is kept and the stack goes
to the `goalflow` profile instead (the banner then says `--profile goalflow`). The marker is a
comment rather than a property because the SDKs' strict loaders refuse unknown properties, and a
comment costs the CLI nothing. `temporal config set` rewrites the whole file without comments:
the profile then counts as the user's and is left alone from then on, the safe way to be wrong.

Only the launcher's own dev server gets a profile. With TEMPORAL_ADDRESS the server is someone
else's: its address may only resolve inside compose (`temporal:7233`), it may need TLS or an API
key goalflow does not have, and whoever runs it has configured their CLI already.

The profile holds the API token (as the codec's `Bearer` header), so the file is written 0600,
as `temporal config set` writes it.
"""

import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError
from tomlkit.items import Table

from core.settings import Settings

DEFAULT_PROFILE = "default"
OWN_PROFILE = "goalflow"
MARKER = "# written by goalflow's `make run` on each start; without this comment it keeps off `default`"
"""On the profile's header line; what tells goalflow's `default` profile from the user's."""
MARKER_PREFIX = "# written by goalflow"
"""What is recognised, so a reworded MARKER still claims the profiles older releases wrote."""


class CliConfigError(Exception):
    """The config file could not be read or written; the stack runs anyway, the CLI needs flags."""


@dataclass(frozen=True)
class CliProfile:
    """Where the stack's profile went: `profile` is `default` unless the user has their own."""

    path: Path
    profile: str

    @property
    def is_default(self) -> bool:
        return self.profile == DEFAULT_PROFILE


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """The file the CLI reads: TEMPORAL_CONFIG_FILE, else `<user config dir>/temporalio/temporal.toml`
    (Go's `os.UserConfigDir`, which the CLI uses: XDG_CONFIG_HOME or ~/.config on Linux)."""
    env = os.environ if environ is None else environ
    if env.get("TEMPORAL_CONFIG_FILE"):
        return Path(env["TEMPORAL_CONFIG_FILE"]).expanduser()
    home = Path(env.get("HOME") or Path.home())
    if sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    elif sys.platform == "win32":
        base = Path(env.get("APPDATA") or home / "AppData" / "Roaming")
    else:
        base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return base / "temporalio" / "temporal.toml"


def stack_profile(settings: Settings) -> Table:
    """Address, namespace and the API's codec with its token, marked as goalflow's."""
    profile = tomlkit.table()
    profile.comment(MARKER.removeprefix("# "))
    profile["address"] = settings.temporal_target
    profile["namespace"] = settings.temporal_namespace
    codec = tomlkit.table()
    codec["endpoint"] = settings.codec_endpoint
    if settings.api_token is not None:
        codec["auth"] = f"Bearer {settings.api_token.get_secret_value()}"
    profile["codec"] = codec
    return profile


def is_goalflows(profile: object) -> bool:
    """Whether a profile carries goalflow's marker (an inline or dotted one never does)."""
    return isinstance(profile, Table) and profile.trivia.comment.strip().startswith(MARKER_PREFIX)


def choose_profile(document: tomlkit.TOMLDocument) -> str:
    """`default` if it is free or goalflow's own, else `goalflow` (the user's default is kept)."""
    profiles = document.get("profile")
    if not isinstance(profiles, Table) or DEFAULT_PROFILE not in profiles:
        return DEFAULT_PROFILE
    return DEFAULT_PROFILE if is_goalflows(profiles[DEFAULT_PROFILE]) else OWN_PROFILE


def write_profile(settings: Settings, *, path: Path | None = None) -> CliProfile:
    """Point the CLI at this stack; raises CliConfigError (never a half-written file) if it can't.

    The new text goes to a temporary file beside the old one, made 0600 before the token is in
    it, then replaces it in one rename, so the CLI never reads a partial file. A symlinked config
    (dotfiles) is followed and its target edited.
    """
    target = (path or config_path()).resolve()
    try:
        text = target.read_text(encoding="utf-8") if target.exists() else ""
        document = tomlkit.parse(text)
    except (OSError, UnicodeDecodeError, TOMLKitError) as exc:
        raise CliConfigError(f"cannot read {target}: {exc}") from exc
    name = choose_profile(document)
    profiles = document.get("profile")
    if not isinstance(profiles, Table):
        if profiles is not None:  # `profile = {...}` inline, or not a table at all: not ours to fix
            raise CliConfigError(f"{target}: `profile` is not a table")
        profiles = tomlkit.table(is_super_table=True)
        document["profile"] = profiles
    profiles[name] = stack_profile(settings)
    try:
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".temporal-", suffix=".toml")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:  # mkstemp made it 0600
                out.write(tomlkit.dumps(document))
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise CliConfigError(f"cannot write {target}: {exc}") from exc
    return CliProfile(path=target, profile=name)
