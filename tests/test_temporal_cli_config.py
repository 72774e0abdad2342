"""The Temporal CLI works with no flags after `make run`: the launcher writes a profile (address,
namespace, the API's codec and its token) into the CLI's config file, without taking a person's
own `default` profile (core/temporal_cli_config.py)."""

import asyncio
import base64
import json
import os
import stat
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import tomlkit
from pydantic import SecretStr
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    ScheduleState,
)

from core.codec import ENCODING
from core.launcher import api_env, cli_line, dev_ui_origins
from core.settings import Settings
from core.temporal import connect
from core.temporal_cli_config import (
    MARKER,
    OWN_PROFILE,
    CliProfile,
    config_path,
    write_profile,
)
from tests.conftest import TEMPORAL_BIN
from tests.stack import free_port, running_launcher, until
from tests.test_codec import served_api

USERS_OWN = """# my clusters
[profile.default]  # prod, hands off
address = "prod.example:7233"
namespace = "prod"

[profile.staging]
address = "staging.example:7233"
"""


def stack(port: int = 7233, *, api_port: int = 8000, token: str = "tok") -> Settings:
    """Settings of a `make run` stack with its own dev server on `port` (whatever the session's
    environment says: it exports TEMPORAL_ADDRESS)."""
    return Settings(
        temporal_address=None,
        temporal_port=port,
        temporal_namespace="default",
        api_host="127.0.0.1",
        api_port=api_port,
        api_token=SecretStr(token),
    )


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real Temporal CLI with only `env` (and PATH): no address, namespace or codec of ours."""
    return subprocess.run(
        [TEMPORAL_BIN, *args],
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def opened(output: str) -> str:
    """The CLI's JSON output with each payload's data (base64 there) spelled out, and every
    payload's encoding, so ciphertext (ours is `binary/encrypted`) shows as such."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("data"), str) and isinstance(node.get("metadata"), dict):
                found.append(base64.b64decode(node["metadata"].get("encoding", "")).decode())
                found.append(base64.b64decode(node["data"]).decode("utf-8", "replace"))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(output))
    return "\n".join(found)


def profiles(path: Path) -> dict[str, dict[str, Any]]:
    return tomlkit.parse(path.read_text()).unwrap()["profile"]


def test_a_fresh_machine_gets_the_default_profile_private_to_the_user_and_read_by_the_cli(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "temporal.toml"
    written = write_profile(stack(7301, api_port=8101, token="s3cret"), path=path)
    assert written == CliProfile(path=path.resolve(), profile="default")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the API token
    assert profiles(path)["default"] == {
        "address": "127.0.0.1:7301",
        "namespace": "default",
        "codec": {"endpoint": "http://127.0.0.1:8101/api/v1/codec", "auth": "Bearer s3cret"},
    }
    got = cli({"TEMPORAL_CONFIG_FILE": str(path)}, "config", "get", "--output", "json")
    assert got.returncode == 0, got.stderr
    assert "127.0.0.1:7301" in got.stdout and "Bearer s3cret" in got.stdout


def test_the_users_own_default_profile_is_kept_and_the_stack_goes_to_the_goalflow_profile(
    tmp_path: Path,
) -> None:
    path = tmp_path / "temporal.toml"
    path.write_text(USERS_OWN)
    written = write_profile(stack(7302), path=path)
    assert written.profile == OWN_PROFILE and not written.is_default
    text = path.read_text()
    assert text.startswith(USERS_OWN)  # byte for byte, comments and all
    assert profiles(path)["goalflow"]["address"] == "127.0.0.1:7302"
    # The banner tells how to pick it.
    assert "--profile goalflow" in cli_line(written) and "TEMPORAL_PROFILE=goalflow" in cli_line(written)
    # And the CLI reads both: the user's default untouched, ours by name.
    env = {"TEMPORAL_CONFIG_FILE": str(path)}
    assert "prod.example:7233" in cli(env, "config", "get", "--prop", "address").stdout
    ours = cli({**env, "TEMPORAL_PROFILE": "goalflow"}, "config", "get", "--prop", "address")
    assert "127.0.0.1:7302" in ours.stdout, ours.stderr
    # The next start still leaves it alone, and rewrites its own profile only.
    write_profile(stack(7303), path=path)
    assert path.read_text().startswith(USERS_OWN)
    assert profiles(path)["goalflow"]["address"] == "127.0.0.1:7303"


def test_goalflows_own_default_profile_is_rewritten_on_the_next_start(tmp_path: Path) -> None:
    path = tmp_path / "temporal.toml"
    path.write_text("# mine\n[profile.staging]\naddress = 'staging.example:7233'\n")
    assert write_profile(stack(7304, token="old"), path=path).is_default
    assert MARKER in path.read_text()  # what marks it as goalflow's
    again = write_profile(stack(7305, api_port=8105, token="new"), path=path)
    assert again.is_default
    found = profiles(path)
    assert set(found) == {"staging", "default"}  # no goalflow profile beside it
    assert found["default"]["address"] == "127.0.0.1:7305"
    assert found["default"]["codec"] == {
        "endpoint": "http://127.0.0.1:8105/api/v1/codec",
        "auth": "Bearer new",
    }
    assert path.read_text().startswith("# mine\n")


def test_a_default_profile_rewritten_by_temporal_config_set_counts_as_the_users(tmp_path: Path) -> None:
    """`temporal config set` drops comments, marker included: from then on goalflow keeps off it."""
    path = tmp_path / "temporal.toml"
    write_profile(stack(7306), path=path)
    env = {"TEMPORAL_CONFIG_FILE": str(path)}
    assert cli(env, "config", "set", "--prop", "namespace", "--value", "mine").returncode == 0
    assert MARKER not in path.read_text()
    assert write_profile(stack(7307), path=path).profile == OWN_PROFILE
    assert profiles(path)["default"]["namespace"] == "mine"


def test_an_unreadable_config_file_is_left_as_it_is(tmp_path: Path) -> None:
    from core.temporal_cli_config import CliConfigError

    path = tmp_path / "temporal.toml"
    path.write_text("[profile.default\naddress = ")
    with pytest.raises(CliConfigError, match="cannot read"):
        write_profile(stack(), path=path)
    assert path.read_text() == "[profile.default\naddress = "
    assert "no profile written" in cli_line("cannot read it")


def test_the_config_file_is_found_where_the_cli_looks_for_it(tmp_path: Path) -> None:
    home = str(tmp_path)
    assert config_path({"HOME": home}) == tmp_path / ".config" / "temporalio" / "temporal.toml"
    assert config_path({"HOME": home, "XDG_CONFIG_HOME": "/x"}) == Path("/x/temporalio/temporal.toml")
    assert config_path({"HOME": home, "TEMPORAL_CONFIG_FILE": "/y/t.toml"}) == Path("/y/t.toml")
    # The CLI agrees: a profile written by HOME alone is the one it reads with HOME alone.
    write_profile(stack(7308), path=config_path({"HOME": home}))
    got = cli({"HOME": home}, "config", "get", "--prop", "address")
    assert "127.0.0.1:7308" in got.stdout, got.stderr


def test_only_the_launchers_own_dev_server_in_dev_trusts_its_web_ui(tmp_path: Path) -> None:
    own = stack().model_copy(update={"temporal_ui_port": 8299, "environment": "dev"})
    assert dev_ui_origins(own) == ["http://127.0.0.1:8299", "http://localhost:8299"]
    assert api_env(own) == {"CODEC_TRUSTED_ORIGINS": '["http://127.0.0.1:8299", "http://localhost:8299"]'}
    assert api_env(own.model_copy(update={"temporal_address": "temporal:7233"})) == {}
    assert api_env(own.model_copy(update={"environment": "production"})) == {}


async def test_workflow_list_show_and_schedule_describe_answer_decoded_with_no_flags(
    client: Client, settings: Settings, tmp_path: Path
) -> None:
    secret = f"schedule-input-{uuid.uuid4().hex}"
    started = f"workflow-input-{uuid.uuid4().hex}"
    queue = f"cli-config-{uuid.uuid4().hex[:8]}"  # no worker: the inputs only need to be stored
    schedule_id, workflow_id = f"cli-sched-{uuid.uuid4().hex[:8]}", f"cli-wf-{uuid.uuid4().hex[:8]}"
    await client.create_schedule(
        schedule_id,
        Schedule(
            action=ScheduleActionStartWorkflow(
                "NoSuchWorkflow", secret, id=f"{schedule_id}-run", task_queue=queue
            ),
            spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=timedelta(hours=1))]),
            state=ScheduleState(paused=True),
        ),
    )
    handle = await client.start_workflow("NoSuchWorkflow", started, id=workflow_id, task_queue=queue)
    stack_settings = settings.model_copy(update={"api_port": free_port()})
    home = tmp_path / "home"
    try:
        async with served_api(stack_settings) as _:
            # What the launcher does for its own server: here the session's, on a non-default port.
            written = write_profile(stack_settings, path=config_path({"HOME": str(home)}))
            assert written.is_default
            env = {"HOME": str(home)}  # no TEMPORAL_ADDRESS, no flags: only the profile

            def run(*args: str) -> str:
                done = cli(env, *args, "--output", "json", "--command-timeout", "30s")
                assert done.returncode == 0, done.stdout + done.stderr
                return done.stdout

            described = opened(
                await asyncio.to_thread(run, "schedule", "describe", "--schedule-id", schedule_id)
            )
            assert secret in described and ENCODING.decode() not in described, described
            listed = await asyncio.to_thread(
                run, "workflow", "list", "--query", f"WorkflowId = '{workflow_id}'"
            )
            assert workflow_id in listed and "NoSuchWorkflow" in listed, listed
            shown = opened(await asyncio.to_thread(run, "workflow", "show", "--workflow-id", workflow_id))
            assert started in shown and ENCODING.decode() not in shown, shown
            # The decoding is the profile's codec: without it the same command shows ciphertext.
            raw = await asyncio.to_thread(
                run, "schedule", "describe", "--schedule-id", schedule_id, "--disable-config-file",
                "--address", settings.temporal_target,
            )  # fmt: skip
            assert secret not in opened(raw) and ENCODING.decode() in opened(raw)
    finally:
        await handle.terminate()
        await client.get_schedule_handle(schedule_id).delete()


async def test_make_run_points_the_cli_at_itself_and_lets_its_own_web_ui_decode(tmp_path: Path) -> None:
    """The real launcher, on free ports: its profile answers the CLI with payloads decoded, and
    its API lets its own dev Web UI's origin decode without a token."""
    with running_launcher(tmp_path) as launcher:
        await until(lambda: "running — Ctrl-C" in launcher.output, "the banner", launcher, 120)
        config = tmp_path / "temporal.toml"  # tests/stack.py points TEMPORAL_CONFIG_FILE here
        assert f"workflow list (profile default in {config}" in launcher.output, launcher.output
        assert "the Web UI above decodes payloads by itself" in launcher.output
        # The launcher's codec key: generated there, or inherited like the launcher did.
        own = Settings(
            _env_file=tmp_path / "data" / "generated.env", temporal_address=launcher.temporal_target
        )
        secret = f"launcher-input-{uuid.uuid4().hex}"
        client = await connect(own)
        workflow_id = f"cli-launcher-{uuid.uuid4().hex[:8]}"
        handle = await client.start_workflow("NoSuchWorkflow", secret, id=workflow_id, task_queue="nobody")
        show = ["workflow", "show", "--workflow-id", workflow_id, "--output", "json"]
        done = await asyncio.to_thread(cli, {"TEMPORAL_CONFIG_FILE": str(config)}, *show)
        assert done.returncode == 0, done.stderr
        assert secret in opened(done.stdout)
        await handle.terminate()

        endpoint = profiles(config)["default"]["codec"]["endpoint"]
        assert endpoint == f"{launcher.api_url}/api/v1/codec"
        ui_origin = next(
            line.split()[-1] for line in launcher.output.splitlines() if line.strip().startswith("Web UI")
        )
        body = {
            "payloads": [{"metadata": {"encoding": base64.b64encode(b"json/plain").decode()}, "data": ""}]
        }
        async with httpx.AsyncClient(base_url=launcher.api_url) as http:
            let_in = await http.post("/api/v1/codec/decode", json=body, headers={"Origin": ui_origin})
            assert let_in.status_code == 200, let_in.text
            other = await http.post(
                "/api/v1/codec/decode", json=body, headers={"Origin": "http://evil.example"}
            )
            assert other.status_code == 401
