"""Registry settings from the environment."""

from __future__ import annotations

import pytest

from services.kit.settings import ConfigurationError, load_settings
from services.registry.settings import LinkVerification, RegistrySettings

ENV_NAMES = (
    "REGISTRY_GRPC_HOST",
    "REGISTRY_GRPC_PORT",
    "FACEIT_API_KEY",
    "FACEIT_API_BASE",
    "FACEIT_GAME",
    "FACEIT_TIMEOUT_S",
    "GRPC_AUTH_TOKEN",
    "DATABASE_URL",
    "LINK_VERIFICATION",
    "FACEIT_OAUTH_CLIENT_ID",
    "FACEIT_OAUTH_CLIENT_SECRET",
    "FACEIT_OAUTH_DISCOVERY_URL",
    "LINK_PUBLIC_BASE_URL",
    "LINK_STATE_TTL_S",
    "REGISTRY_HTTP_HOST",
    "REGISTRY_HTTP_PORT",
)
OAUTH = {
    "FACEIT_API_KEY": "a1b2c3d4-real-looking-key",
    "FACEIT_OAUTH_CLIENT_ID": "0f8e4d3c-2b1a-4c5d-9e8f-7a6b5c4d3e2f",
    "FACEIT_OAUTH_CLIENT_SECRET": "s3cr3t-from-app-studio",
    "LINK_PUBLIC_BASE_URL": "https://voice.example.com/",
}


def set_env(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    """Set every variable of `values`."""
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No registry variable leaks in from the machine running the tests."""
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_with_the_api_key_and_the_oauth_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """The API key, the OAuth client and the public URL are required; the rest default."""
    set_env(monkeypatch, OAUTH)

    settings = load_settings(RegistrySettings, _env_file=None)

    assert settings.faceit_api_key.get_secret_value() == "a1b2c3d4-real-looking-key"
    assert settings.grpc_address == "127.0.0.1:50053"
    assert settings.faceit_api_base == "https://open.faceit.com/data/v4"
    assert settings.faceit_game == "cs2"
    assert settings.database_url is None
    assert settings.link_verification is LinkVerification.FACEIT_OAUTH
    assert settings.faceit_oauth_discovery_url == (
        "https://api.faceit.com/auth/v1/openid_configuration"
    )
    assert settings.link_public_base_url == "https://voice.example.com"
    assert settings.link_state_ttl_s == 600
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8081)


def test_faceit_oauth_mode_names_what_it_misses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the OAuth client and public URL, faceit_oauth (the default) refuses to start."""
    monkeypatch.setenv("FACEIT_API_KEY", "a1b2c3d4-real-looking-key")

    with pytest.raises(ConfigurationError) as refused:
        load_settings(RegistrySettings, _env_file=None)

    message = refused.value.message
    for name in ("FACEIT_OAUTH_CLIENT_ID", "FACEIT_OAUTH_CLIENT_SECRET", "LINK_PUBLIC_BASE_URL"):
        assert name in message
    assert "LINK_VERIFICATION=nickname" in message


def test_nickname_mode_needs_no_oauth_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """LINK_VERIFICATION=nickname starts with only FACEIT_API_KEY (the unverified mode)."""
    monkeypatch.setenv("FACEIT_API_KEY", "a1b2c3d4-real-looking-key")
    monkeypatch.setenv("LINK_VERIFICATION", "nickname")

    settings = load_settings(RegistrySettings, _env_file=None)

    assert settings.link_verification is LinkVerification.NICKNAME


@pytest.mark.parametrize(
    "url",
    [
        "http://voice.example.com",
        "ftp://voice.example.com",
        "voice.example.com",
        "https://user:pw@voice.example.com",
        "https://voice.example.com/?next=x",
    ],
)
def test_public_base_url_must_be_https_and_plain(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """LINK_PUBLIC_BASE_URL is https (http only on loopback), without credentials or query."""
    set_env(monkeypatch, {**OAUTH, "LINK_PUBLIC_BASE_URL": url})

    with pytest.raises(ConfigurationError, match="LINK_PUBLIC_BASE_URL"):
        load_settings(RegistrySettings, _env_file=None)


def test_public_base_url_may_be_http_on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Plain http is accepted for a loopback LINK_PUBLIC_BASE_URL (local runs, the sandbox)."""
    set_env(monkeypatch, {**OAUTH, "LINK_PUBLIC_BASE_URL": "http://127.0.0.1:8081"})

    settings = load_settings(RegistrySettings, _env_file=None)

    assert settings.link_public_base_url == "http://127.0.0.1:8081"


def test_placeholder_oauth_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A placeholder FACEIT_OAUTH_CLIENT_SECRET stops the start, naming the variable."""
    set_env(monkeypatch, {**OAUTH, "FACEIT_OAUTH_CLIENT_SECRET": "changeme"})

    with pytest.raises(ConfigurationError, match="FACEIT_OAUTH_CLIENT_SECRET"):
        load_settings(RegistrySettings, _env_file=None)


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """REGISTRY_GRPC_HOST/PORT, FACEIT_API_BASE, FACEIT_GAME and timeouts come from the env."""
    set_env(monkeypatch, OAUTH)
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
