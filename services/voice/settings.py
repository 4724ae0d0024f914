"""Settings of the voice service, read from the environment and validated at start."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import Field, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

from services.kit.settings import Secret, ServiceSettings
from services.voice.naming import DEFAULT_TEMPLATE, ChannelNaming, TemplateError

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
    metrics_host: str = Field(default="127.0.0.1", validation_alias="VOICE_METRICS_HOST")
    metrics_port: int = Field(default=8082, ge=0, le=65535, validation_alias="VOICE_METRICS_PORT")
    registry_service_addr: str = Field(
        default="127.0.0.1:50053", validation_alias="REGISTRY_SERVICE_ADDR"
    )
    voice_close_delay_s: float = Field(default=0.0, validation_alias="VOICE_CLOSE_DELAY_S", ge=0)
    registry_timeout_s: float = Field(default=10.0, gt=0, validation_alias="REGISTRY_TIMEOUT_S")
    link_verification: LinkVerification = Field(
        default=LinkVerification.FACEIT_OAUTH, validation_alias="LINK_VERIFICATION"
    )
    # The match feed (off unless set).
    discord_match_feed_channel_id: int | None = Field(
        default=None, validation_alias="DISCORD_MATCH_FEED_CHANNEL_ID", gt=0
    )

    # Staff access and channel names (issue 14, points 2 and 4).
    discord_staff_role_ids: Annotated[tuple[int, ...], NoDecode] = Field(
        default=(), validation_alias="DISCORD_STAFF_ROLE_IDS"
    )
    voice_channel_name_template: str = Field(
        default=DEFAULT_TEMPLATE, validation_alias="VOICE_CHANNEL_NAME_TEMPLATE"
    )

    @field_validator("discord_staff_role_ids", mode="before")
    @classmethod
    def _split_role_ids(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        parts = [part.strip() for part in value.split(",") if part.strip()]
        if not all(part.isdigit() and int(part) > 0 for part in parts):
            raise PydanticCustomError(
                "role_ids", "must be comma-separated Discord role ids (numbers), e.g. 123,456"
            )
        return tuple(sorted({int(part) for part in parts}))

    @field_validator("voice_channel_name_template", mode="after")
    @classmethod
    def _valid_template(cls, value: str) -> str:
        try:
            ChannelNaming(value)
        except TemplateError as error:
            raise PydanticCustomError("template", "{why}", {"why": str(error)}) from None
        return value

    @property
    def channel_naming(self) -> ChannelNaming:
        """The channel names `voice_channel_name_template` makes."""
        return ChannelNaming(self.voice_channel_name_template)

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
