"""HTML pages of the FACEIT Connect sandbox: the sign-in (consent) page and the error page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from aiohttp import web

from sandbox.faceit.model import Player

# A sign-in page must never be framed (clickjacking) nor cached (it carries the PKCE challenge).
# No `form-action`: Chromium applies it to the redirect after the POST, which leaves for the
# client's redirect_uri on another origin.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}
_STYLE = "body{font-family:sans-serif;max-width:32em;margin:2em auto}label{display:block}"


def _page(title: str, body: str, status: int) -> web.Response:
    text = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n"
        f"<body><h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return web.Response(text=text, status=status, content_type="text/html", headers=PAGE_HEADERS)


def error_page(message: str, status: int = 400) -> web.Response:
    """An error page that stays on the sandbox (used when redirecting back is unsafe)."""
    return _page("FACEIT sign-in error", f'<p id="error">{escape(message)}</p>', status)


def sign_in_page(
    *, action: str, client_id: str, params: Mapping[str, str], players: Sequence[Player]
) -> web.Response:
    """The sign-in page: pick a player, then allow or deny; posts `params` back as hidden fields."""
    hidden = "".join(
        f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'
        for name, value in params.items()
    )
    choices = "".join(
        f'<label for="player-{escape(p.player_id)}"><input type="radio" name="player_id" '
        f'id="player-{escape(p.player_id)}" value="{escape(p.player_id)}" required> '
        f"{escape(p.nickname)}</label>"
        for p in players
    )
    if not players:
        choices = '<p id="no-players">No players yet: create one with POST /_sandbox/players.</p>'
    body = (
        f'<p>The application <strong id="client-id">{escape(client_id)}</strong> asks to know '
        "who you are on FACEIT: your player id, nickname and picture.</p>\n"
        f'<form method="post" action="{escape(action)}">{hidden}'
        f"<fieldset><legend>Sign in as</legend>{choices}</fieldset>"
        '<button type="submit" name="decision" value="allow">Allow</button> '
        '<button type="submit" name="decision" value="deny" formnovalidate>Deny</button>'
        "</form>"
    )
    return _page("Sign in with FACEIT (sandbox)", body, 200)
