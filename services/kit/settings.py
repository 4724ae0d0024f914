"""Environment-driven settings shared by every service, with one clear report of every problem."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, SettingsConfigDict

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

_PLACEHOLDER_WORDS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "replaceme",
        "replace-me",
        "replace_me",
        "placeholder",
        "todo",
        "tbd",
        "fixme",
        "secret",
        "password",
        "token",
        "your-token-here",
        "your_token_here",
        "...",
    }
)


def is_placeholder(value: str) -> bool:
    """Tell whether `value` looks like a template placeholder rather than a real secret."""
    text = value.strip().lower()
    if text in _PLACEHOLDER_WORDS:
        return True
    if text.startswith("<") and text.endswith(">"):
        return True
    if len(text) >= 3 and set(text) <= {"x", "*", "."}:
        return True
    return text.startswith(("your-", "your_")) and text.endswith(("-here", "_here"))


def _refuse_placeholder(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise PydanticCustomError("empty_secret", "is empty - set the real value")
    if is_placeholder(value.get_secret_value()):
        raise PydanticCustomError(
            "placeholder_secret", "is a placeholder value - set the real secret"
        )
    return value


Secret = Annotated[SecretStr, AfterValidator(_refuse_placeholder)]
"""A secret setting that refuses empty and placeholder values (`changeme`, `<token>`, `xxx`...)."""


class ConfigurationError(SystemExit):
    """Settings could not be built; the message lists every problem.

    Uncaught, it ends the process with status 1 and prints only the message (registry,
    ingest); an entry point that catches it picks its own status (voice and `make run` exit 2).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ServiceSettings(BaseSettings):
    """Settings every service shares; each service subclasses it with its own fields."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,
        extra="ignore",
        populate_by_name=True,
    )

    database_url: Secret | None = Field(default=None, validation_alias="DATABASE_URL")
    grpc_auth_token: Secret | None = Field(default=None, validation_alias="GRPC_AUTH_TOKEN")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    data_dir: Path = Field(
        default=Path(".data"),
        validation_alias="FACEIT_VOICE_DATA_DIR",
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _known_level(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().upper() in LOG_LEVELS:
            return value.strip().upper()
        raise PydanticCustomError("log_level", "must be one of {levels}", {"levels": LOG_LEVELS})

    @property
    def log_level_number(self) -> int:
        """The numeric `logging` level for `log_level`."""
        return logging.getLevelNamesMapping()[self.log_level]


S = TypeVar("S", bound=BaseSettings)


def env_name(cls: type[BaseSettings], key: str | int) -> str:
    """The environment variable that feeds the field (or alias) `key` of `cls`."""
    prefix = str(cls.model_config.get("env_prefix", ""))
    for name, field in cls.model_fields.items():
        alias = field.validation_alias
        choices: list[str] = []
        if isinstance(alias, str):
            choices = [alias]
        elif isinstance(alias, AliasChoices):
            choices = [choice for choice in alias.choices if isinstance(choice, str)]
        if key == name or key in choices:
            return choices[0] if choices else (prefix + name).upper()
    return str(key).upper()


def describe_errors(cls: type[BaseSettings], error: ValidationError) -> str:
    """Render every validation problem of `cls` on its own line, named by environment variable."""
    lines = []
    for problem in error.errors():
        location = problem["loc"]
        name = env_name(cls, location[0]) if location else cls.__name__
        inner = "".join(f"[{part}]" for part in location[1:])
        if problem["type"] == "missing":
            text = "missing - set it in .env or the environment"
        else:
            text = problem["msg"]
        lines.append(f"  {name}{inner}: {text}")
    count = len(lines)
    header = f"configuration error: {count} problem{'s' if count != 1 else ''}"
    return "\n".join([header, *lines])


def load_settings(cls: type[S], **values: Any) -> S:
    """Build `cls` from the environment and `.env`; ConfigurationError lists every problem.

    Keyword arguments go to the constructor (for example `_env_file=None` in tests).
    """
    try:
        return cls(**values)
    except ValidationError as error:
        raise ConfigurationError(describe_errors(cls, error)) from None
