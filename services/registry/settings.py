"""Registry service settings, from the environment (and `.env`), validated at start."""

from __future__ import annotations

from enum import StrEnum
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.kit.faceit_api import DEFAULT_BASE_URL
from services.kit.settings import Secret, ServiceSettings
from services.registry.urls import url_problem

DEFAULT_DISCOVERY_URL = "https://api.faceit.com/auth/v1/openid_configuration"


class LinkVerification(StrEnum):
    """How a Discord user proves a FACEIT account is theirs."""

    FACEIT_OAUTH = "faceit_oauth"
    """Signing in with FACEIT (FACEIT Connect); only verified links give channel access."""
    NICKNAME = "nickname"
    """No proof: `/register <nickname>` links any account (the unverified, old behaviour)."""


class RegistrySettings(ServiceSettings):
    """Everything `python -m services.registry` needs.

    FACEIT_API_KEY is required; with LINK_VERIFICATION=faceit_oauth (the default) so are
    FACEIT_OAUTH_CLIENT_ID, FACEIT_OAUTH_CLIENT_SECRET and LINK_PUBLIC_BASE_URL.
    """

    grpc_host: str = Field(default="127.0.0.1", validation_alias="REGISTRY_GRPC_HOST")
    grpc_port: int = Field(default=50053, ge=0, le=65535, validation_alias="REGISTRY_GRPC_PORT")
    faceit_api_key: Secret = Field(validation_alias="FACEIT_API_KEY")
    faceit_api_base: str = Field(default=DEFAULT_BASE_URL, validation_alias="FACEIT_API_BASE")
    faceit_game: str = Field(default="cs2", min_length=1, validation_alias="FACEIT_GAME")
    faceit_timeout_s: float = Field(default=10.0, gt=0, validation_alias="FACEIT_TIMEOUT_S")
    faceit_connect_timeout_s: float = Field(
        default=5.0, gt=0, validation_alias="FACEIT_CONNECT_TIMEOUT_S"
    )
    faceit_max_attempts: int = Field(default=4, ge=1, le=10, validation_alias="FACEIT_MAX_ATTEMPTS")
    faceit_suggestions: int = Field(default=5, ge=1, le=20, validation_alias="FACEIT_SUGGESTIONS")
    database_timeout_s: float = Field(default=30.0, gt=0, validation_alias="DATABASE_TIMEOUT_S")
    link_verification: LinkVerification = Field(
        default=LinkVerification.FACEIT_OAUTH, validation_alias="LINK_VERIFICATION"
    )
    faceit_oauth_client_id: str | None = Field(
        default=None, min_length=1, max_length=200, validation_alias="FACEIT_OAUTH_CLIENT_ID"
    )
    faceit_oauth_client_secret: Secret | None = Field(
        default=None, validation_alias="FACEIT_OAUTH_CLIENT_SECRET"
    )
    faceit_oauth_discovery_url: str = Field(
        default=DEFAULT_DISCOVERY_URL, validation_alias="FACEIT_OAUTH_DISCOVERY_URL"
    )
    link_public_base_url: str | None = Field(default=None, validation_alias="LINK_PUBLIC_BASE_URL")
    link_state_ttl_s: int = Field(default=600, ge=60, le=3600, validation_alias="LINK_STATE_TTL_S")
    http_host: str = Field(default="127.0.0.1", validation_alias="REGISTRY_HTTP_HOST")
    http_port: int = Field(default=8081, ge=0, le=65535, validation_alias="REGISTRY_HTTP_PORT")

    @field_validator("link_public_base_url", "faceit_oauth_discovery_url")
    @classmethod
    def _https_unless_loopback(cls, value: str | None) -> str | None:
        if value is None:
            return None
        problem = url_problem(value) or ("must have no query" if urlsplit(value).query else None)
        if problem is not None:
            raise PydanticCustomError("url", problem)
        return value.rstrip("/")

    @model_validator(mode="after")
    def _oauth_needs_a_client(self) -> Self:
        if self.link_verification is not LinkVerification.FACEIT_OAUTH:
            return self
        missing = [
            name
            for name, value in (
                ("FACEIT_OAUTH_CLIENT_ID", self.faceit_oauth_client_id),
                ("FACEIT_OAUTH_CLIENT_SECRET", self.faceit_oauth_client_secret),
                ("LINK_PUBLIC_BASE_URL", self.link_public_base_url),
            )
            if value is None
        ]
        if missing:
            raise PydanticCustomError(
                "oauth_settings",
                "LINK_VERIFICATION=faceit_oauth needs {missing} (or set LINK_VERIFICATION="
                "nickname to link without proof)",
                {"missing": ", ".join(missing)},
            )
        return self

    @property
    def grpc_address(self) -> str:
        """The `host:port` the gRPC server binds."""
        return f"{self.grpc_host}:{self.grpc_port}"

    @property
    def oauth_client_secret(self) -> SecretStr:
        """The OAuth client secret (faceit_oauth mode guarantees one)."""
        assert self.faceit_oauth_client_secret is not None
        return self.faceit_oauth_client_secret
