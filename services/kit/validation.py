"""Checks of request fields against the input limits: every gRPC servicer validates with these.

A value beyond a limit, or with a NUL character (Postgres text cannot hold one), is refused
with InvalidArgument naming the field. Messages never echo a value whole: `preview` quotes a
short prefix, so an error about a 3 MB value stays a short line.
"""

from __future__ import annotations

from collections.abc import Sized

from services.kit.errors import InvalidArgument
from services.kit.limits import MAX_ID_BYTES, MAX_TEXT_CHARS

PREVIEW_CHARS = 40


def preview(value: str) -> str:
    """`value` as an error message may quote it: the repr of at most PREVIEW_CHARS characters."""
    if len(value) <= PREVIEW_CHARS:
        return repr(value)
    return f"{value[:PREVIEW_CHARS]!r}…"


def _without_nul(value: str, field: str) -> str:
    if "\x00" in value:
        raise InvalidArgument(f"{field} contains a NUL character")
    return value


def check_id(
    value: str, field: str, *, required: bool = False, max_bytes: int = MAX_ID_BYTES
) -> str:
    """`value` if it is an id of at most `max_bytes` UTF-8 bytes without NUL (and not blank,
    when `required`); InvalidArgument otherwise."""
    _without_nul(value, field)
    if len(value.encode()) > max_bytes:
        raise InvalidArgument(f"{field} is longer than {max_bytes} bytes")
    if required and not value.strip():
        raise InvalidArgument(f"{field} is required")
    return value


def check_text(value: str, field: str, max_chars: int = MAX_TEXT_CHARS) -> str:
    """`value` if it is at most `max_chars` characters without NUL; InvalidArgument otherwise."""
    _without_nul(value, field)
    if len(value) > max_chars:
        raise InvalidArgument(f"{field} is longer than {max_chars} characters")
    return value


def check_count(items: Sized, field: str, limit: int) -> None:
    """InvalidArgument when `items` holds more than `limit` entries."""
    if len(items) > limit:
        raise InvalidArgument(f"at most {limit} {field} are allowed, got {len(items)}")
