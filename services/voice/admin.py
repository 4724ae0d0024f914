"""The logic of the admin commands /match list, /match close and /match sync, apart from py-cord.

Every answer is text for an ephemeral reply; every action is logged with the admin's user id
(and the match id when there is one).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from services.kit.errors import DomainError, InvalidArgument, NotFound
from services.kit.logging import log_context
from services.kit.validation import check_id, preview
from services.voice.matches import MatchService
from services.voice.model import CloseOutcome, MatchRecord, MatchState
from services.voice.reconcile import Reconciler

logger = logging.getLogger(__name__)

LIST_PAGE = 20
"""Matches /match list shows; a reply holds at most 2,000 characters."""
MAX_REPLY_CHARS = 2_000
ADMIN_CLOSE_REASON = "closed_by_admin"
"""The close reason stored (and shown in Discord's audit log) for /match close."""


@dataclass(frozen=True)
class CloseCheck:
    """What /match close found before asking for confirmation."""

    text: str
    match_id: str | None = None
    """Set when the match may be closed (the confirmation buttons are shown)."""


def _fit(lines: list[str], more: str) -> str:
    """The lines joined, cut to a reply's length with `more` as the last line if cut."""
    text = "\n".join(lines)
    if len(text) <= MAX_REPLY_CHARS:
        return text
    kept: list[str] = []
    for line in lines:
        if len("\n".join([*kept, line, more])) > MAX_REPLY_CHARS:
            break
        kept.append(line)
    return "\n".join([*kept, more])


def _count(number: int, noun: str, plural: str = "") -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"


def describe_match(record: MatchRecord) -> list[str]:
    """One line for the match, then one per team: its channel and who is linked in it."""
    opened = f" (opened <t:{int(record.opened_at.timestamp())}:R>)" if record.opened_at else ""
    lines = [f"**{record.match_id}**{opened}"]
    for team in record.teams:
        channel = record.channel(team.faction)
        label = team.name or team.faction
        if channel is None or channel.channel_id is None:
            lines.append(f"- {label}: no channel (no linked player in the guild)")
            continue
        linked = ", ".join(f"<@{uid}>" for uid in sorted(channel.member_ids)) or "nobody"
        lines.append(f"- {label}: <#{channel.channel_id}>, linked: {linked}")
    return lines


class AdminCommands:
    """What the /match commands do; the caller has checked the member may run them."""

    def __init__(self, matches: MatchService, reconciler: Reconciler) -> None:
        self._matches = matches
        self._reconciler = reconciler

    async def list_open(self, admin_id: int) -> str:
        """The open matches, oldest first, with their channels and linked players."""
        logger.info("admin %s ran /match list", admin_id)
        records, next_token = await self._matches.list_matches(LIST_PAGE, "")
        if not records:
            return "No match is open."
        shown = _count(len(records), "open match", "open matches")
        lines = [f"{shown}{' and more' if next_token else ''}:"]
        for record in records:
            lines.extend(describe_match(record))
        if next_token:
            lines.append(f"Only the {LIST_PAGE} oldest are shown.")
        return _fit(lines, "… (cut: too long for one message)")

    async def check_close(self, admin_id: int, match_id: str) -> CloseCheck:
        """Whether the match can be closed, with the question or the reason it cannot."""
        match_id = match_id.strip()
        with log_context(match_id=match_id[:64]):
            try:
                check_id(match_id, "match_id", required=True)
                record = await self._matches.get_match(match_id)
            except (InvalidArgument, NotFound) as error:
                logger.info("admin %s asked to close a match: %s", admin_id, error.message)
                if isinstance(error, NotFound):
                    return CloseCheck(f"No match {preview(match_id)} is known to the bot.")
                return CloseCheck(f"That is not a match id: {error.message}.")
            if record.state is MatchState.CLOSED:
                return CloseCheck(f"Match **{match_id}** is already closed.")
            logger.info("admin %s asked to close the match", admin_id)
            return CloseCheck(
                "\n".join(
                    [
                        "Close this match? Its players go to the lobby and its channels are "
                        "deleted, as when FACEIT ends it.",
                        *describe_match(record),
                    ]
                ),
                match_id,
            )

    async def close(self, admin_id: int, match_id: str) -> str:
        """Close the match as CloseMatch does, at its current version."""
        with log_context(match_id=match_id):
            try:
                record = await self._matches.get_match(match_id)
                result = await self._matches.close_match(
                    match_id, record.version, ADMIN_CLOSE_REASON
                )
            except DomainError as error:
                logger.warning("admin %s could not close the match: %s", admin_id, error.message)
                return f"Closing **{match_id}** failed: {error.message}"
            logger.info("admin %s closed the match: %s", admin_id, result.outcome.name.lower())
        if result.outcome is CloseOutcome.CLOSED:
            return (
                f"Match **{match_id}** closed: {_count(len(result.deleted_channel_ids), 'channel')}"
                f" deleted, {_count(result.moved_to_lobby, 'player')} moved to the lobby."
            )
        if result.outcome is CloseOutcome.SCHEDULED:
            return f"Match **{match_id}** closed: its channels go after the grace period."
        return f"Match **{match_id}** was already closed."

    async def sync(self, admin_id: int) -> str:
        """Reconcile now; what changed."""
        logger.info("admin %s ran /match sync", admin_id)
        report = await self._reconciler.run()
        lines = [
            f"Reconciled {report.open_matches} open and {report.closing_matches} closing matches."
        ]
        for match_id, changes in report.changes.items():
            lines.extend(f"- {match_id}: {change}" for change in changes)
        if not report.changes:
            lines.append("Nothing to change: Discord already matched the database.")
        if report.failed:
            lines.append(f"Failed (see the logs): {', '.join(report.failed)}")
        logger.info("admin %s's /match sync changed %s matches", admin_id, len(report.changes))
        return _fit(lines, "… (cut: too long for one message)")
