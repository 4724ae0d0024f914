"""Registry settings from the environment."""

from __future__ import annotations

import pytest

from services.kit.settings import ConfigurationError, load_settings
from services.registry.settings import RegistrySettings

ENV_NAMES = (
    "REGISTRY_GRPC_HOST",
    "REGISTRY_GRPC_PORT",
    "FACEIT_API_KEY",
    "FACEIT_API_BASE",
    "FACEIT_GAME",
    "FACEIT_TIMEOUT_S",
    "GRPC_AUTH_TOKEN",
    "DATABASE_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No registry variable leaks in from the machine running the tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_with_only_the_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only FACEIT_API_KEY is required; the rest default to the contract's values."""
    monkeypatch.setenv("FACEIT_API_KEY", "a1b2c3d4-real-looking-key")

    settings = load_settings(RegistrySettings, _env_file=None)

    assert settings.faceit_api_key.get_secret_value() == "a1b2c3d4-real-looking-key"
    assert settings.grpc_address == "127.0.0.1:50053"
    assert settings.faceit_api_base == "https://open.faceit.com/data/v4"
    assert settings.faceit_game == "cs2"
    assert settings.database_url is None


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGISTRY_GRPC_HOST/PORT, FACEIT_API_BASE, FACEIT_GAME and timeouts come from the env."""
    monkeypatch.setenv("FACEIT_API_KEY", "a1b2c3d4-real-looking-key")
    monkeypatch.setenv("REGISTRY_GRPC_HOST", "0.0.0.0")
    monkeypatch.setenv("REGISTRY_GRPC_PORT", "6000")
    monkeypatch.setenv("FACEIT_API_BASE", "http://127.0.0.1:9000/data/v4")
    monkeypatch.setenv("FACEIT_GAME", "csgo")
    monkeypatch.setenv("FACEIT_TIMEOUT_S", "2.5")

    settings = load_settings(RegistrySettings, _env_file=None)

    assert settings.grpc_address == "0.0.0.0:6000"
    assert settings.faceit_api_base == "http://127.0.0.1:9000/data/v4"
    assert settings.faceit_game == "csgo"
    assert settings.faceit_timeout_s == 2.5


def test_missing_api_key_is_refused() -> None:
    """Without FACEIT_API_KEY the settings name the missing variable."""
    with pytest.raises(ConfigurationError, match="FACEIT_API_KEY: missing"):
        load_settings(RegistrySettings, _env_file=None)


@pytest.mark.parametrize("placeholder", ["changeme", "<your-key>", "xxxx", "  "])
def test_placeholder_api_key_is_refused(monkeypatch: pytest.MonkeyPatch, placeholder: str) -> None:
    """A placeholder or blank FACEIT_API_KEY stops the start with a clear message."""
    monkeypatch.setenv("FACEIT_API_KEY", placeholder)

    with pytest.raises(ConfigurationError, match="FACEIT_API_KEY"):
        load_settings(RegistrySettings, _env_file=None)


def test_bad_port_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A port outside 0..65535 is a configuration error naming REGISTRY_GRPC_PORT."""
    monkeypatch.setenv("FACEIT_API_KEY", "a1b2c3d4-real-looking-key")
    monkeypatch.setenv("REGISTRY_GRPC_PORT", "70000")

    with pytest.raises(ConfigurationError, match="REGISTRY_GRPC_PORT"):
        load_settings(RegistrySettings, _env_file=None)
