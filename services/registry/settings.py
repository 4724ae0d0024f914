"""Registry service settings, from the environment (and `.env`), validated at start."""

from __future__ import annotations

from pydantic import Field

from services.kit.faceit_api import DEFAULT_BASE_URL
from services.kit.settings import Secret, ServiceSettings


class RegistrySettings(ServiceSettings):
    """Everything `python -m services.registry` needs; FACEIT_API_KEY is required."""

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

    @property
    def grpc_address(self) -> str:
        """The `host:port` the gRPC server binds."""
        return f"{self.grpc_host}:{self.grpc_port}"
