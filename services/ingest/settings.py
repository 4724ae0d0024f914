"""IngestSettings: the ingest service's environment, validated once at start."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import NoDecode

from services.kit.settings import Secret, ServiceSettings

DEFAULT_FACEIT_API_BASE = "https://open.faceit.com/data/v4"

IdList = Annotated[tuple[str, ...], NoDecode]


class IngestSettings(ServiceSettings):
    """Everything `python -m services.ingest` reads from the environment."""

    faceit_webhook_header: str = Field(
        default="X-Faceit-Signature", validation_alias="FACEIT_WEBHOOK_HEADER", min_length=1
    )
    faceit_webhook_query_param: str | None = Field(
        default=None, validation_alias="FACEIT_WEBHOOK_QUERY_PARAM"
    )
    faceit_webhook_allow_unauthenticated: bool = Field(
        default=False, validation_alias="FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED"
    )
    faceit_webhook_secret: Secret | None = Field(
        default=None, validation_alias="FACEIT_WEBHOOK_SECRET", validate_default=True
    )
    faceit_hub_ids: IdList = Field(default=(), validation_alias="FACEIT_HUB_IDS")
    faceit_organizer_ids: IdList = Field(default=(), validation_alias="FACEIT_ORGANIZER_IDS")
    faceit_api_key: Secret | None = Field(default=None, validation_alias="FACEIT_API_KEY")
    faceit_api_base: str = Field(
        default=DEFAULT_FACEIT_API_BASE, validation_alias="FACEIT_API_BASE", min_length=1
    )
    faceit_poll_interval_s: float = Field(
        default=60.0, validation_alias="FACEIT_POLL_INTERVAL_S", gt=0
    )
    faceit_poll_max_requests: int = Field(
        default=100, validation_alias="FACEIT_POLL_MAX_REQUESTS", ge=1
    )
    voice_service_addr: str = Field(
        default="127.0.0.1:50052", validation_alias="VOICE_SERVICE_ADDR", min_length=1
    )
    voice_deadline_s: float = Field(default=10.0, validation_alias="VOICE_DEADLINE_S", gt=0)
    ingest_http_host: str = Field(default="0.0.0.0", validation_alias="INGEST_HTTP_HOST")
    grpc_host: str = Field(default="0.0.0.0", validation_alias="INGEST_GRPC_HOST")
    ingest_http_port: int = Field(default=8080, validation_alias="INGEST_HTTP_PORT", ge=0)
    grpc_port: int = Field(default=50051, validation_alias="INGEST_GRPC_PORT", ge=0)
    delivery_sweep_interval_s: float = Field(
        default=5.0, validation_alias="INGEST_SWEEP_INTERVAL_S", gt=0
    )
    delivery_retry_base_s: float = Field(default=0.5, validation_alias="INGEST_RETRY_BASE_S", gt=0)
    delivery_retry_cap_s: float = Field(default=60.0, validation_alias="INGEST_RETRY_CAP_S", gt=0)
    delivery_concurrency: int = Field(
        default=16, validation_alias="INGEST_DELIVERY_CONCURRENCY", ge=1
    )
    ingest_http_header_timeout_s: float = Field(
        default=10.0, validation_alias="INGEST_HTTP_HEADER_TIMEOUT_S", gt=0
    )
    ingest_http_body_timeout_s: float = Field(
        default=10.0, validation_alias="INGEST_HTTP_BODY_TIMEOUT_S", gt=0
    )
    ingest_http_max_connections: int = Field(
        default=1000, validation_alias="INGEST_HTTP_MAX_CONNECTIONS", ge=1
    )
    delivery_lease_s: float = Field(default=60.0, validation_alias="INGEST_DELIVERY_LEASE_S", gt=0)

    @field_validator("faceit_hub_ids", "faceit_organizer_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("faceit_webhook_secret", mode="after")
    @classmethod
    def _secret_or_explicit_opt_out(cls, value: object, info: ValidationInfo) -> object:
        if value is None and not info.data.get("faceit_webhook_allow_unauthenticated", False):
            raise PydanticCustomError(
                "webhook_secret",
                "missing - set it, or set FACEIT_WEBHOOK_ALLOW_UNAUTHENTICATED=true "
                "to accept unauthenticated webhooks",
            )
        return value
