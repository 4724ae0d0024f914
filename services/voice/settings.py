"""Settings of the voice service, read from the environment and validated at start."""

from __future__ import annotations

from enum import StrEnum

from pydantic import Field, model_validator

from services.kit.settings import Secret, ServiceSettings

DEFAULT_DISCORD_API_BASE = "https://discord.com/api"


class LinkVerification(StrEnum):
    """How /register links a FACEIT account; the registry's LINK_VERIFICATION must agree."""

    FACEIT_OAUTH = "faceit_oauth"
    """`/register` answers with a link to sign in with FACEIT (a verified link)."""
    NICKNAME = "nickname"
    """`/register <nickname>` links any account, unverified (the old behaviour)."""


class VoiceSettings(ServiceSettings):
    """What `python -m services.voice` needs; DISCORD_TOKEN and DISCORD_GUILD_ID are required."""

    discord_token: Secret = Field(validation_alias="DISCORD_TOKEN")
    discord_guild_id: int = Field(validation_alias="DISCORD_GUILD_ID", gt=0)
    discord_category_id: int | None = Field(default=None, validation_alias="DISCORD_CATEGORY_ID")
    discord_lobby_channel_id: int | None = Field(
        default=None, validation_alias="DISCORD_LOBBY_CHANNEL_ID"
    )
    discord_api_base: str = Field(
        default=DEFAULT_DISCORD_API_BASE, validation_alias="DISCORD_API_BASE"
    )
    grpc_host: str = Field(default="127.0.0.1", validation_alias="VOICE_GRPC_HOST")
    grpc_port: int = Field(default=50052, validation_alias="VOICE_GRPC_PORT", ge=0)
    registry_service_addr: str = Field(
        default="127.0.0.1:50053", validation_alias="REGISTRY_SERVICE_ADDR"
    )
    voice_close_delay_s: float = Field(default=0.0, validation_alias="VOICE_CLOSE_DELAY_S", ge=0)
    registry_timeout_s: float = Field(default=10.0, gt=0, validation_alias="REGISTRY_TIMEOUT_S")
    link_verification: LinkVerification = Field(
        default=LinkVerification.FACEIT_OAUTH, validation_alias="LINK_VERIFICATION"
    )
    lease_timeout_s: float = Field(default=10.0, gt=0, validation_alias="VOICE_LEASE_TIMEOUT_S")
    lease_renew_s: float = Field(default=2.0, gt=0, validation_alias="VOICE_LEASE_RENEW_S")

    @model_validator(mode="after")
    def _renewals_fit_the_lease(self) -> VoiceSettings:
        # The holder acts until (timeout - renew) after a renewal: at least two renewals must
        # fit in, so that one lost heartbeat does not stop it.
        if self.lease_renew_s * 3 > self.lease_timeout_s:
            raise ValueError(
                "VOICE_LEASE_RENEW_S must be at most a third of VOICE_LEASE_TIMEOUT_S "
                f"(got {self.lease_renew_s:g}s and {self.lease_timeout_s:g}s)"
            )
        return self

    @property
    def discord_rest_base(self) -> str:
        """The py-cord `Route.API_BASE_URL` for `discord_api_base` (it formats the version in)."""
        return self.discord_api_base.rstrip("/") + "/v{API_VERSION}"
