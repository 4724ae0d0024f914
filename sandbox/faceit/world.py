"""The FACEIT sandbox's in-memory state, the `World`, and the operations that change it."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Sequence

from sandbox.faceit.model import (
    KNOWN_STATUSES,
    OVER_STATUSES,
    ConflictError,
    Hub,
    Match,
    Player,
    SandboxError,
    Subscription,
    Team,
    elo_for_skill_level,
    is_hub_match_of_type,
    skill_level_for_elo,
)

# Statuses from which a match is played with final rosters: filling rosters are full there.
SEATED_STATUSES = frozenset({"CONFIGURING", "READY", "ONGOING", "PAUSED", "MANUAL_RESULT"})
# The Data API's match `version` once the match has left check-in: every real capture (READY,
# CANCELLED, FINISHED) says 2 where the same match's webhooks said 71 or 12.
SETTLED_API_VERSION = 2
# Steps of the webhook `payload.version`: captures show 1 -> 6 -> 17 for one match, so it grows
# by several at a time; from 2 up, it is above the Data API's version after the first change.
WEBHOOK_VERSION_STEPS = (2, 12)


class World:
    """Everything the sandbox knows; no I/O, so it is shared by the Data and control APIs."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        rng: random.Random,
        default_hub: Hub,
        fill_rosters: bool = False,
    ) -> None:
        self._clock = clock
        self._rng = rng
        self.default_hub = default_hub
        self.fill_rosters = fill_rosters
        self._players: dict[str, Player] = {}
        self._hubs: dict[str, Hub] = {default_hub.hub_id: default_hub}
        self._matches: dict[str, Match] = {}
        self._subscriptions: dict[str, Subscription] = {}

    # players
    def add_player(
        self,
        nickname: str,
        *,
        player_id: str | None = None,
        skill_level: int | None = None,
        faceit_elo: int | None = None,
        avatar: str = "",
        country: str = "gb",
        game_player_name: str | None = None,
    ) -> Player:
        """Create a player; nicknames and ids are unique (exact, case-sensitive)."""
        if not nickname:
            raise SandboxError("nickname is required")
        if self.player_by_nickname(nickname) is not None:
            raise ConflictError(f"nickname {nickname!r} is taken")
        player_id = player_id or str(uuid.uuid4())
        if player_id in self._players:
            raise ConflictError(f"player_id {player_id!r} exists")
        if faceit_elo is None:
            faceit_elo = elo_for_skill_level(skill_level) if skill_level else 1000
        if skill_level is None:
            skill_level = skill_level_for_elo(faceit_elo)
        elo_for_skill_level(skill_level)  # validates the range
        player = Player(
            player_id=player_id,
            nickname=nickname,
            avatar=avatar,
            country=country,
            skill_level=skill_level,
            faceit_elo=faceit_elo,
            game_player_id=str(76561197960265728 + self._rng.randrange(1, 10**9)),
            game_player_name=game_player_name or nickname,
            region=self.default_hub.region,
            created_at=self._clock(),
        )
        self._players[player_id] = player
        return player

    def player(self, player_id: str) -> Player | None:
        """The player with this id, if any."""
        return self._players.get(player_id)

    def player_by_nickname(self, nickname: str) -> Player | None:
        """The player with exactly this nickname (case-sensitive), if any."""
        return next((p for p in self._players.values() if p.nickname == nickname), None)

    def search_players(self, part: str) -> list[Player]:
        """Players whose nickname contains `part`, ignoring case; prefix matches first."""
        needle = part.lower()
        found = [p for p in self._players.values() if needle in p.nickname.lower()]
        return sorted(
            found, key=lambda p: (not p.nickname.lower().startswith(needle), p.nickname.lower())
        )

    def players(self) -> list[Player]:
        """Every player, in creation order."""
        return list(self._players.values())

    # hubs
    def hub(self, hub_id: str) -> Hub | None:
        """The hub with this id, if any."""
        return self._hubs.get(hub_id)

    def ensure_hub(self, hub_id: str, organizer_id: str | None) -> Hub:
        """The hub with this id, created on first use."""
        hub = self._hubs.get(hub_id)
        if hub is None:
            hub = Hub(
                hub_id=hub_id,
                name=f"Sandbox hub {hub_id[:8]}",
                organizer_id=organizer_id or self.default_hub.organizer_id,
                game=self.default_hub.game,
                region=self.default_hub.region,
            )
            self._hubs[hub_id] = hub
        return hub

    # matches
    def create_match(
        self,
        teams: Sequence[Sequence[str]],
        *,
        match_id: str | None = None,
        hub_id: str | None = None,
        organizer_id: str | None = None,
        team_names: Sequence[str] | None = None,
        fill_rosters: bool | None = None,
    ) -> Match:
        """Create a match in CHECK_IN, versions 1, with two teams of known players.

        With `fill_rosters` (the world's default when None) each team starts with its
        captain (its first player) and fills up as the match moves towards CONFIGURING.
        """
        if len(teams) != 2 or any(not team for team in teams):
            raise SandboxError("teams must be two non-empty lists of player ids")
        every_id = [pid for team in teams for pid in team]
        if len(set(every_id)) != len(every_id):
            raise SandboxError("a player can be in only one team, once")
        unknown = [pid for pid in every_id if pid not in self._players]
        if unknown:
            raise SandboxError(f"unknown player ids: {', '.join(unknown)}")
        if team_names is not None and len(team_names) != 2:
            raise SandboxError("team_names must have two names")
        match_id = match_id or f"1-{uuid.uuid4()}"
        if match_id in self._matches:
            raise ConflictError(f"match {match_id!r} exists")
        hub = self.ensure_hub(hub_id, organizer_id) if hub_id else self.default_hub
        fill = self.fill_rosters if fill_rosters is None else fill_rosters
        now = self._clock()
        built = []
        for index, player_ids in enumerate(teams):
            leader = self._players[player_ids[0]]
            name = team_names[index] if team_names else f"team_{leader.nickname}"
            built.append(
                Team(
                    faction_id=leader.player_id,
                    name=name,
                    leader_id=leader.player_id,
                    avatar=leader.avatar,
                    player_ids=list(player_ids),
                    seated=1 if fill else len(player_ids),
                )
            )
        match = Match(
            match_id=match_id,
            hub_id=hub.hub_id,
            organizer_id=organizer_id or hub.organizer_id,
            game=hub.game,
            region=hub.region,
            status="CHECK_IN",
            webhook_version=1,
            api_version=1,
            teams=built,
            created_at=now,
            updated_at=now,
            fill_rosters=fill,
        )
        self._matches[match_id] = match
        return match

    def match(self, match_id: str) -> Match | None:
        """The match with this id, if any."""
        return self._matches.get(match_id)

    def matches(self) -> list[Match]:
        """Every match, in creation order."""
        return list(self._matches.values())

    def hub_matches(self, hub_id: str, kind: str) -> list[Match]:
        """The matches of a hub that `GET /hubs/{id}/matches?type=kind` lists, oldest first."""
        return [
            m
            for m in self._matches.values()
            if m.hub_id == hub_id and is_hub_match_of_type(m.status, kind)
        ]

    def set_status(
        self,
        match: Match,
        status: str,
        *,
        reason: str | None = None,
        afk_player_ids: Iterable[str] = (),
        winner: str | None = None,
    ) -> Match:
        """Move a match to `status`, seat players, grow its versions and stamp the times.

        The webhook version grows by a random step; the Data API's settles at 2 (its model in
        the README). Filling rosters seat one more player per team at each step before
        CONFIGURING, everyone from CONFIGURING on; an over status seats nobody.
        """
        if status not in KNOWN_STATUSES:
            raise SandboxError(f"unknown FACEIT status {status!r}")
        now = self._clock()
        match.status = status
        match.webhook_version += self._rng.randint(*WEBHOOK_VERSION_STEPS)
        match.api_version = SETTLED_API_VERSION
        match.updated_at = now
        if match.fill_rosters and status not in OVER_STATUSES:
            for team in match.teams:
                wanted = len(team.player_ids) if status in SEATED_STATUSES else team.seated + 1
                team.seated = min(wanted, len(team.player_ids))
        if status == "CONFIGURING":
            match.configured_at = now
        elif status in ("READY", "ONGOING") and match.started_at is None:
            match.started_at = now
        elif status in OVER_STATUSES:
            match.finished_at = now
        if status == "CANCELLED":
            match.cancel_reason = reason or "MANUAL"
            match.afk_player_ids = list(afk_player_ids)
        if status == "FINISHED":
            match.winner = winner or "faction1"
        return match

    # subscriptions
    def add_subscription(
        self,
        url: str,
        *,
        header_name: str | None = None,
        header_value: str | None = None,
        query_param: str | None = None,
        query_value: str | None = None,
    ) -> Subscription:
        """Register a webhook receiver; it gets every event from now on."""
        if not url.startswith(("http://", "https://")):
            raise SandboxError("url must be http(s)")
        if bool(header_name) != bool(header_value):
            raise SandboxError("header_name and header_value go together")
        if bool(query_param) != bool(query_value):
            raise SandboxError("query_param and query_value go together")
        subscription = Subscription(
            subscription_id=str(uuid.uuid4()),
            url=url,
            third_party_id=str(uuid.uuid4()),
            header_name=header_name,
            header_value=header_value,
            query_param=query_param,
            query_value=query_value,
        )
        self._subscriptions[subscription.subscription_id] = subscription
        return subscription

    def remove_subscription(self, subscription_id: str) -> bool:
        """Forget a receiver; whether it existed."""
        return self._subscriptions.pop(subscription_id, None) is not None

    def subscriptions(self) -> list[Subscription]:
        """Every receiver, in creation order."""
        return list(self._subscriptions.values())
