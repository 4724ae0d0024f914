"""The FACEIT webhook bodies as pydantic models (the real envelope and the simplified shape),
bounded by the kit's limits: what `events.parse_webhook` reads."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from services.kit.limits import (
    MAX_ID_BYTES,
    MAX_NAME_CHARS,
    MAX_PLAYERS_PER_TEAM,
    MAX_TEAMS_PER_MATCH,
    MAX_TEXT_CHARS,
)

MAX_VERSION = 2**63 - 1

# Postgres text and jsonb cannot hold NUL, and UTF-8 cannot hold lone surrogates: a pattern
# refuses both inside pydantic-core (its regex needs valid UTF-8), no Python call per string.
STORABLE = r"^[^\x00]*$"


def _within_id_bytes(value: str) -> str:
    # max_length (in characters) has bounded an ASCII id already; isascii() is a flag read, so
    # only an id with other characters pays for encoding it.
    if not value.isascii() and len(value.encode()) > MAX_ID_BYTES:
        raise PydanticCustomError(
            "id_too_long", "must be at most {max_bytes} bytes in UTF-8", {"max_bytes": MAX_ID_BYTES}
        )
    return value


Id = Annotated[
    str, Field(max_length=MAX_ID_BYTES, pattern=STORABLE), AfterValidator(_within_id_bytes)
]
RequiredId = Annotated[Id, Field(min_length=1)]
Name = Annotated[str, Field(max_length=MAX_NAME_CHARS, pattern=STORABLE)]
Text = Annotated[str, Field(max_length=MAX_TEXT_CHARS, pattern=STORABLE)]
EventName = Annotated[
    str, Field(min_length=1, max_length=MAX_ID_BYTES, pattern=r"^[A-Za-z0-9_.:\-]+$")
]
Version = Annotated[int, Field(ge=0, le=MAX_VERSION)]

# A team beyond faction1 and faction2 is dropped (one odd team must not fail the match), but a
# list far longer than any match could have is refused: it bounds the work and the warning.
MAX_TEAMS_LISTED = 4 * MAX_TEAMS_PER_MATCH


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class RosterEntry(_Model):
    """One player of a webhook team (`id` is the FACEIT player id; a blank one is dropped)."""

    id: Id | None = None
    nickname: Name | None = None


class WebhookTeam(_Model):
    """One team of the real payload's `teams` list."""

    id: Id | None = None
    name: Name | None = None
    roster: Annotated[list[RosterEntry], Field(max_length=MAX_PLAYERS_PER_TEAM)] | None = None


class WebhookEntity(_Model):
    """The competition of a match payload."""

    id: Id | None = None
    name: Name | None = None
    type: Text | None = None


Score = Annotated[int, Field(ge=0, le=2**31 - 1)]


class WebhookResults(_Model):
    """`results` of a finished match, when the event carries them (the Data API's shape)."""

    winner: Id | None = None
    score: Annotated[dict[Id, Score], Field(max_length=MAX_TEAMS_LISTED)] | None = None


class MatchPayload(_Model):
    """The `payload` of a real `match_*` webhook."""

    id: RequiredId
    organizer_id: Id | None = None
    region: Text | None = None
    game: Text | None = None
    version: Version = 0
    entity: WebhookEntity | None = None
    teams: Annotated[list[WebhookTeam], Field(max_length=MAX_TEAMS_LISTED)] | None = None
    results: WebhookResults | None = None


class Envelope(_Model):
    """FACEIT's real webhook envelope; `payload` is parsed by event kind."""

    event: EventName
    event_id: RequiredId
    transaction_id: Id | None = None
    third_party_id: Id | None = None
    app_id: Id | None = None
    timestamp: Text | None = None
    retry_count: int | None = None
    version: int | None = None
    payload: dict[str, Any]


class SimplePlayer(_Model):
    """A roster entry of the simplified shape (a blank `player_id` is dropped)."""

    id: Id | None = Field(default=None, validation_alias="player_id")
    nickname: Name | None = None


class SimpleFaction(_Model):
    """A faction of the simplified shape."""

    name: Name | None = None
    roster: Annotated[list[SimplePlayer], Field(max_length=MAX_PLAYERS_PER_TEAM)] | None = None


class SimpleEntity(_Model):
    """The `entity` of the simplified shape: its teams keyed by faction."""

    id: Id | None = None
    name: Name | None = None
    type: Text | None = None
    teams: Annotated[dict[Name, SimpleFaction], Field(max_length=MAX_TEAMS_LISTED)] | None = None


class SimpleEvent(_Model):
    """The flat body the original design notes assumed; event_id and version are optional."""

    event: EventName
    match_id: RequiredId
    organizer_id: Id | None = None
    event_id: RequiredId | None = None
    version: Version | None = None
    entity: SimpleEntity | None = None
