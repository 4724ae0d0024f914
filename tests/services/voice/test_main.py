"""`python -m services.voice` as a real process: it refuses to start and says why."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DISCORD_", "VOICE_"))}
    return subprocess.run(
        [sys.executable, "-m", "services.voice"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_missing_token_and_guild_are_named(tmp_path: Path) -> None:
    """Without DISCORD_TOKEN and DISCORD_GUILD_ID the process exits 2 naming both."""
    result = _run({"FACEIT_VOICE_DATA_DIR": str(tmp_path)})
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr and "DISCORD_GUILD_ID" in result.stderr


def test_placeholder_token_is_refused() -> None:
    """A placeholder DISCORD_TOKEN is refused before anything starts."""
    result = _run({"DISCORD_TOKEN": "changeme", "DISCORD_GUILD_ID": "1"})
    assert result.returncode == 2
    assert "DISCORD_TOKEN" in result.stderr and "placeholder" in result.stderr


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("VOICE_CHANNEL_NAME_TEMPLATE", "Match {nope}", "unknown fields nope"),
        ("DISCORD_STAFF_ROLE_IDS", "123,admins", "role ids"),
    ],
)
def test_a_bad_template_or_staff_role_list_is_refused(setting: str, value: str, says: str) -> None:
    """A template with an unknown field, or staff role ids that are not numbers, stop the start
    with exit 2, naming the setting."""
    result = _run(
        {"DISCORD_TOKEN": "a-real-looking-token", "DISCORD_GUILD_ID": "1", setting: value}
    )
    assert result.returncode == 2
    assert setting in result.stderr and says in result.stderr


def test_a_renewal_period_over_a_third_of_the_lease_is_refused() -> None:
    """VOICE_LEASE_RENEW_S over a third of VOICE_LEASE_TIMEOUT_S: exit 2 naming both."""
    result = _run(
        {
            "DISCORD_TOKEN": "a-real-looking-token",
            "DISCORD_GUILD_ID": "1",
            "VOICE_LEASE_TIMEOUT_S": "3",
            "VOICE_LEASE_RENEW_S": "1.5",
        }
    )
    assert result.returncode == 2
    assert "VOICE_LEASE_RENEW_S" in result.stderr and "VOICE_LEASE_TIMEOUT_S" in result.stderr
