"""Tests of the shared settings: env names, every problem reported at once, no placeholders."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from services.kit.settings import (
    ConfigurationError,
    Secret,
    ServiceSettings,
    is_placeholder,
    load_settings,
)

REPO = Path(__file__).resolve().parents[3]
SHARED_ENV = ("DATABASE_URL", "GRPC_AUTH_TOKEN", "LOG_LEVEL", "FACEIT_VOICE_DATA_DIR")


class BotSettings(ServiceSettings):
    """A service's settings as the voice service would declare them."""

    discord_token: Secret
    discord_guild_id: int


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No shared or bot variables from the outer environment, and no .env in the cwd."""
    for name in (*SHARED_ENV, "DISCORD_TOKEN", "DISCORD_GUILD_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_defaults_without_any_environment() -> None:
    """With nothing set: no database URL, no token, INFO, and .data under the cwd."""
    settings = load_settings(ServiceSettings)
    assert settings.database_url is None
    assert settings.grpc_auth_token is None
    assert settings.log_level == "INFO"
    assert settings.log_level_number == logging.INFO
    assert settings.data_dir == Path(".data")


def test_shared_fields_read_their_env_names(monkeypatch: pytest.MonkeyPatch) -> None:
    """DATABASE_URL, GRPC_AUTH_TOKEN, LOG_LEVEL and FACEIT_VOICE_DATA_DIR feed the fields."""
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:pw@db:5432/app")
    monkeypatch.setenv("GRPC_AUTH_TOKEN", "a-real-token-4f9c")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    monkeypatch.setenv("FACEIT_VOICE_DATA_DIR", "/var/lib/fv")
    settings = load_settings(ServiceSettings)
    assert settings.database_url is not None
    assert settings.database_url.get_secret_value() == "postgresql://u:pw@db:5432/app"
    assert settings.grpc_auth_token is not None
    assert settings.grpc_auth_token.get_secret_value() == "a-real-token-4f9c"
    assert settings.log_level == "DEBUG"
    assert settings.data_dir == Path("/var/lib/fv")
    assert "a-real-token-4f9c" not in repr(settings)


def test_dotenv_file_is_read_and_empty_values_are_unset(tmp_path: Path) -> None:
    """A .env in the cwd is read; an empty value counts as not set."""
    (tmp_path / ".env").write_text("GRPC_AUTH_TOKEN=\nLOG_LEVEL=warning\nUNRELATED=1\n")
    settings = load_settings(ServiceSettings)
    assert settings.grpc_auth_token is None
    assert settings.log_level == "WARNING"


def test_every_problem_is_reported_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """One error lists each bad or missing variable by its env name."""
    monkeypatch.setenv("LOG_LEVEL", "loud")
    monkeypatch.setenv("GRPC_AUTH_TOKEN", "changeme")
    monkeypatch.setenv("DISCORD_GUILD_ID", "not-a-number")
    with pytest.raises(ConfigurationError) as raised:
        load_settings(BotSettings)
    lines = str(raised.value).splitlines()
    assert lines[0] == "configuration error: 4 problems"
    assert "  DISCORD_TOKEN: missing - set it in .env or the environment" in lines
    assert any(line.startswith("  GRPC_AUTH_TOKEN: is a placeholder") for line in lines)
    assert any(line.startswith("  LOG_LEVEL: must be one of") for line in lines)
    assert any(line.startswith("  DISCORD_GUILD_ID: ") for line in lines)
    assert raised.value.code == str(raised.value)


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "CHANGE_ME",
        "your-token-here",
        "your_discord_token_here",
        "<token>",
        "xxx",
        "XXXXXXXX",
        "...",
        "  placeholder  ",
        "TODO",
    ],
)
def test_placeholder_secrets_are_refused(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """Template values in a Secret field are refused, naming the variable."""
    monkeypatch.setenv("DISCORD_TOKEN", value)
    monkeypatch.setenv("DISCORD_GUILD_ID", "1")
    with pytest.raises(ConfigurationError, match="DISCORD_TOKEN: is a placeholder"):
        load_settings(BotSettings)


@pytest.mark.parametrize("value", ["MTIz.abc.def", "x9", "changeme-not-really-7c2e", "xoxo"])
def test_real_looking_secrets_are_accepted(value: str) -> None:
    """Values that merely contain placeholder words are not refused."""
    assert not is_placeholder(value)


def test_whitespace_only_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret of blanks is refused as empty."""
    monkeypatch.setenv("DISCORD_TOKEN", "   ")
    monkeypatch.setenv("DISCORD_GUILD_ID", "1")
    with pytest.raises(ConfigurationError, match="DISCORD_TOKEN: is empty"):
        load_settings(BotSettings)


def test_configuration_error_exits_with_status_one(tmp_path: Path) -> None:
    """Uncaught, ConfigurationError ends the process with status 1 and only the message."""
    script = (
        "from services.kit.settings import Secret, ServiceSettings, load_settings\n"
        "class S(ServiceSettings):\n"
        "    discord_token: Secret\n"
        "load_settings(S)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "DISCORD_TOKEN"}
    env["PYTHONPATH"] = str(REPO)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stderr.strip().startswith("configuration error: 1 problem")
    assert "DISCORD_TOKEN: missing" in result.stderr
    assert "Traceback" not in result.stderr
