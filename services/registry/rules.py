"""Registry rules: what a valid request is, and the domain errors the RPCs answer with."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import grpc

from services.kit.errors import (
    AlreadyExists,
    DomainError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
)
from services.kit.limits import MAX_IDS_PER_CALL, MAX_NAME_CHARS
from services.kit.validation import check_count, check_id, preview

NICKNAME_PATTERN = re.compile(r"[A-Za-z0-9_-]{2,32}")
# Discord snowflakes are uint64 on the wire but stored as BIGINT; real ones stay below 2**63.
MAX_DISCORD_ID = 2**63 - 1
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
SUGGESTIONS_METADATA_KEY = "faceitvoice-suggestions"
# Bidirectional overrides could make the link page show a name other than the account's.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


class NicknameNotFound(NotFound):
    """FACEIT knows no player with this nickname; `suggestions` are close nicknames it does know."""

    def __init__(self, nickname: str, suggestions: Sequence[str]) -> None:
        hint = f"; did you mean {', '.join(suggestions)}?" if suggestions else ""
        super().__init__(f"no FACEIT player is called {nickname!r}{hint}")
        self.suggestions = tuple(suggestions)

    @property
    def trailing_metadata(self) -> tuple[tuple[str, str], ...]:
        """The `faceitvoice-suggestions` entry: the close nicknames separated by commas."""
        return ((SUGGESTIONS_METADATA_KEY, ",".join(self.suggestions)),)


class AccountLinkedElsewhere(AlreadyExists):
    """The FACEIT account is linked to another Discord user."""

    def __init__(self, nickname: str) -> None:
        super().__init__(
            f"FACEIT account {nickname!r} is already linked to another Discord user",
            details={"faceit_nickname": nickname},
        )


class UnlinkFirst(FailedPrecondition):
    """The Discord user is linked to another FACEIT account; they must unlink it first."""

    def __init__(self, linked_nickname: str, requested_nickname: str) -> None:
        super().__init__(
            f"this Discord user is linked to FACEIT account {linked_nickname!r}; "
            f"unlink first to link {requested_nickname!r}",
            details={"faceit_nickname": linked_nickname},
        )


class LinkNotFound(NotFound):
    """No link exists for the Discord user or FACEIT player asked about."""


class ChangesOutOfRange(DomainError):
    """WatchLinkChanges cannot resume from the sequence asked: its changes were pruned, or it
    was never issued (another database). The caller rereads every link and watches from 0."""

    status = grpc.StatusCode.OUT_OF_RANGE


class VerificationRequired(FailedPrecondition):
    """LinkPlayer by nickname while links must be verified."""

    def __init__(self) -> None:
        super().__init__(
            "links must be verified (LINK_VERIFICATION=faceit_oauth): a FACEIT account is "
            "linked by signing in with FACEIT (StartLink), not by nickname"
        )


class VerificationOff(FailedPrecondition):
    """StartLink while links are made by nickname."""

    def __init__(self) -> None:
        super().__init__(
            "link verification is off (LINK_VERIFICATION=nickname): link by nickname (LinkPlayer)"
        )


def validate_discord_name(name: str, field: str, *, required: bool) -> str:
    """A Discord display name or username: at most MAX_NAME_CHARS characters, no control or
    bidirectional-override characters; InvalidArgument otherwise."""
    text = name.strip()
    if required and not text:
        raise InvalidArgument(f"{field} is required")
    if len(text) > MAX_NAME_CHARS:
        raise InvalidArgument(f"{field} is longer than {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(char) == "Cc" or char in _BIDI_CONTROLS for char in text):
        raise InvalidArgument(f"{field} {preview(text)} has control characters")
    return text


def validate_nickname(nickname: str) -> str:
    """The nickname if it is 2 to 32 letters, digits, '-' or '_'; InvalidArgument otherwise."""
    if not NICKNAME_PATTERN.fullmatch(nickname):
        raise InvalidArgument(
            f"faceit_nickname {preview(nickname)} is not a FACEIT nickname: "
            "use 2 to 32 letters, digits, '-' or '_'"
        )
    return nickname


def validate_discord_user_id(discord_user_id: int) -> int:
    """The id if it can be a Discord snowflake (1 to 2**63 - 1); InvalidArgument otherwise."""
    if discord_user_id == 0:
        raise InvalidArgument("discord_user_id is required (got 0)")
    if not 0 < discord_user_id <= MAX_DISCORD_ID:
        raise InvalidArgument(f"discord_user_id {discord_user_id} is not a Discord snowflake")
    return discord_user_id


def validate_player_id(faceit_player_id: str) -> str:
    """The FACEIT player id if it is a non-blank id within the limits; InvalidArgument otherwise."""
    return check_id(faceit_player_id, "faceit_player_id", required=True)


def distinct_player_ids(faceit_player_ids: Sequence[str]) -> list[str]:
    """The ids without duplicates, in first-seen order; at most MAX_IDS_PER_CALL may be asked."""
    check_count(faceit_player_ids, "faceit_player_ids per call", MAX_IDS_PER_CALL)
    return list(dict.fromkeys(validate_player_id(player_id) for player_id in faceit_player_ids))


def page_size(requested: int) -> int:
    """The page size to use: DEFAULT_PAGE_SIZE for 0, else 1 to MAX_PAGE_SIZE."""
    if requested == 0:
        return DEFAULT_PAGE_SIZE
    if not 1 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument(f"page_size must be 1 to {MAX_PAGE_SIZE} (or 0), got {requested}")
    return requested
