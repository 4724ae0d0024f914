"""Names of the match channels, from the `VOICE_CHANNEL_NAME_TEMPLATE` (pure functions).

Fields a template may use (Python `str.format` syntax):

- `{match_id}`: the FACEIT match id, e.g. `1-d785567a-fd28-42a4-af99-6b3cec21c6a9`
- `{match_short}`: its first 8 characters, e.g. `1-d78556`
- `{faction}`: `faction1` or `faction2`
- `{team_number}`: `1` or `2`
- `{team_name}`: the team's name as FACEIT gives it (may be empty)
- `{team}`: the team's name, or `Team 1` / `Team 2` when FACEIT gives none
- `{opponent}`: the other team's name (may be empty)
- `{team_suffix}`: ` · {team_name}` when both teams have a name, else empty (the default's rule)
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass

MAX_CHANNEL_NAME = 100
"""Discord's limit on channel names (1 to 100 characters)."""

DEFAULT_TEMPLATE = "Match {match_short}{team_suffix}"
"""The names given before templates existed: `Match 1-d78556 · Team name`."""

FIELDS = frozenset(
    {"match_id", "match_short", "faction", "team_number", "team_name", "team", "opponent"}
    | {"team_suffix"}
)
FREE_TEXT = ("team_name", "team", "opponent", "team_suffix")
"""Fields of names set by organisers, cut when a name would be too long."""

WORST_MATCH_ID = "1-" + "f" * 36
"""The longest match id FACEIT makes: `1-` and a UUID."""


class TemplateError(ValueError):
    """The template cannot make valid Discord channel names; the message says why."""


def _fields(template: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as error:
        raise TemplateError(f"is not a valid template: {error}") from None
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name == "" or name.isdigit():
            raise TemplateError("uses a positional field {}; name a field, e.g. {match_short}")
        if spec or conversion:
            raise TemplateError(f"field {{{name}}} has a format spec or conversion; use plain {{}}")
        names.add(name)
    return names


@dataclass(frozen=True)
class ChannelNaming:
    """A checked template that names each team's channel."""

    template: str = DEFAULT_TEMPLATE

    def __post_init__(self) -> None:
        unknown = _fields(self.template) - FIELDS
        if unknown:
            raise TemplateError(
                f"uses unknown fields {', '.join(sorted(unknown))}; "
                f"known: {', '.join(sorted(FIELDS))}"
            )
        bare = self._render(_values(WORST_MATCH_ID, "faction2", "", "")).strip()
        if not bare:
            raise TemplateError("gives an empty name when the teams have no names")
        if len(bare) > MAX_CHANNEL_NAME:
            raise TemplateError(
                f"gives {len(bare)} characters for a FACEIT match id with unnamed teams, "
                f"over Discord's {MAX_CHANNEL_NAME}"
            )

    def _render(self, values: Mapping[str, str]) -> str:
        return self.template.format_map(values)

    def name(self, match_id: str, faction: str, team_name: str, opponent: str) -> str:
        """The team's channel name, at most 100 characters: team names are cut first."""
        values = _values(match_id, faction, team_name.strip(), opponent.strip())
        name = self._render(values).strip()
        cut = max((len(values[f]) for f in FREE_TEXT), default=0)
        while len(name) > MAX_CHANNEL_NAME and cut > 0:
            cut -= 1
            shorter = {**values, **{f: _cut(values[f], cut) for f in FREE_TEXT}}
            name = self._render(shorter).strip()
        return name[:MAX_CHANNEL_NAME].strip()


def _cut(text: str, length: int) -> str:
    return text if len(text) <= length else text[: max(length - 1, 0)].rstrip() + "…"


def _values(match_id: str, faction: str, team_name: str, opponent: str) -> dict[str, str]:
    number = faction.removeprefix("faction")
    both_named = bool(team_name and opponent)
    return {
        "match_id": match_id,
        "match_short": match_id[:8],
        "faction": faction,
        "team_number": number,
        "team_name": team_name,
        "team": team_name or f"Team {number}",
        "opponent": opponent,
        "team_suffix": f" · {team_name}" if both_named else "",
    }
