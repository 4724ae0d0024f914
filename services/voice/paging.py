"""ListMatches' opaque page token: the (opened_at, match_id) key of the last match sent."""

from __future__ import annotations

import base64
import json
from datetime import datetime

from services.kit.errors import InvalidArgument


def encode_page_token(opened_at: datetime, match_id: str) -> str:
    """An opaque token for the page after (opened_at, match_id)."""
    raw = json.dumps([opened_at.isoformat(), match_id]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_page_token(token: str) -> tuple[datetime, str]:
    """The (opened_at, match_id) a page token stands for; InvalidArgument when malformed."""
    try:
        opened_at, match_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(opened_at), str(match_id)
    except (ValueError, TypeError) as error:
        raise InvalidArgument("page_token is malformed") from error
