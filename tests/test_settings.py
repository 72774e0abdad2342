"""List settings accept JSON and comma-separated values; garbage gets one line naming the
variable (and `make run` stops with it, no traceback)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("1001", [1001]), ("1001, 1002", [1001, 1002]), ("[1001,1002]", [1001, 1002]), ("", [])],
)
def test_list_settings_accept_json_and_comma_separated_values(
    monkeypatch: pytest.MonkeyPatch, raw: str, expected: list[int]
) -> None:
    monkeypatch.setenv("TELEGRAM_ALLOWED_USER_IDS", raw)
    monkeypatch.setenv("TELEGRAM_NOTIFY_CHAT_IDS", raw)
    monkeypatch.setenv("HTTP_ALLOWLIST", "intranet.example, 10.0.0.0/8")
    settings = Settings()
    assert settings.telegram_allowed_user_ids == expected
    assert settings.telegram_notify_chat_ids == expected
    assert settings.http_allowlist == ["intranet.example", "10.0.0.0/8"]


def test_make_run_with_a_garbage_list_setting_says_which_variable_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TELEGRAM_ALLOWED_USER_IDS": "1001,alice"}
    done = subprocess.run(
        [sys.executable, "-m", "core.launcher"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "TELEGRAM_ALLOWED_USER_IDS" in done.stderr
    assert "Traceback" not in done.stderr
    assert "alice" not in done.stderr  # values are never echoed (they may be secrets)
    assert not (tmp_path / "data" / "temporal.db").exists()
