"""The FACEIT Data API's response shapes, as far as faceit-voice reads them (unknown fields
ignored)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class GameProfile(_Model):
    """A player's profile in one game (`games.cs2` of a Player)."""

    skill_level: int = 0
    faceit_elo: int = 0
    region: str = ""
    game_player_id: str = ""
    game_player_name: str = ""


class FaceitPlayer(_Model):
    """A Player as `GET /players?nickname=` and `GET /players/{id}` return it."""

    player_id: str
    nickname: str
    avatar: str = ""
    country: str = ""
    faceit_url: str = ""
    steam_id_64: str = ""
    verified: bool = False
    games: dict[str, GameProfile] = Field(default_factory=dict)

    def profile_url(self, lang: str = "en") -> str:
        """`faceit_url` with FACEIT's `{lang}` placeholder filled in."""
        return self.faceit_url.replace("{lang}", lang)


class SearchGame(_Model):
    """One game of a search result; FACEIT sends `skill_level` as a string, parsed to int."""

    name: str
    skill_level: int = 0


class PlayerSearchResult(_Model):
    """One item of `GET /search/players`: fuzzy, to be confirmed with the exact lookup."""

    player_id: str
    nickname: str
    avatar: str = ""
    country: str = ""
    status: str = ""
    verified: bool = False
    games: list[SearchGame] = Field(default_factory=list)


class RosterPlayer(_Model):
    """One player of a match faction's roster."""

    player_id: str
    nickname: str = ""
    avatar: str = ""
    membership: str = ""
    game_player_id: str = ""
    game_player_name: str = ""
    game_skill_level: int = 0
    anticheat_required: bool = False


class Faction(_Model):
    """One team of a Data API match (`teams.faction1` / `teams.faction2`)."""

    faction_id: str = ""
    name: str = ""
    leader: str = ""
    avatar: str = ""
    type: str = ""
    roster: list[RosterPlayer] = Field(default_factory=list)


class MatchResults(_Model):
    """`results` of a finished match: the winning faction and each faction's score."""

    winner: str = ""
    score: dict[str, int] = Field(default_factory=dict)


class FaceitMatch(_Model):
    """A match as `GET /matches/{id}` and hub match listings return it (times in Unix seconds)."""

    match_id: str
    version: int = 0
    game: str = ""
    region: str = ""
    competition_id: str = ""
    competition_type: str = ""
    competition_name: str = ""
    organizer_id: str = ""
    status: str = ""
    teams: dict[str, Faction] = Field(default_factory=dict)
    configured_at: int | None = None
    started_at: int | None = None
    finished_at: int | None = None
    faceit_url: str = ""
    results: MatchResults | None = None


class MatchPage(_Model):
    """One page of a match listing; there is no total, a short page is the last one."""

    items: list[FaceitMatch] = Field(default_factory=list)
    start: int = 0
    end: int = 0


class SearchPage(_Model):
    """One page of a player search."""

    items: list[PlayerSearchResult] = Field(default_factory=list)
