"""The HTML pages of the link flow: plain, accessible, every value escaped, one inline style
allowed by its hash (the Content-Security-Policy allows nothing else)."""

from __future__ import annotations

import base64
import hashlib
from html import escape

from services.registry.link_flow import Finished, LinkFlowError
from services.registry.link_states import LinkState

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.5;color:#111;background:#fff}"
    "strong{font-weight:700}"
    "button{font-size:1.1rem;padding:.6rem 1.2rem;cursor:pointer}"
    ".warning{border-left:4px solid #b00;padding-left:1rem}"
)
STYLE_SOURCE = "'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"
"""The CSP source that allows exactly the inline STYLE."""


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n"
        f"<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n"
    )


def discord_account(state: LinkState) -> str:
    """The Discord account as the page names it: display name and @username, escaped."""
    name = f"<strong>{escape(state.discord_display_name)}</strong>"
    if state.discord_username and state.discord_username != state.discord_display_name:
        name += f" (@{escape(state.discord_username)})"
    return name


def confirm_page(state: LinkState, action_url: str, page_token: str) -> str:
    """Before FACEIT: which Discord account will be linked, and a button to continue."""
    account = discord_account(state)
    body = (
        f"<p>Signing in with FACEIT will link your FACEIT account to the Discord account "
        f"{account}.</p>\n"
        f'<p class="warning">If {account} is not your Discord account, close this page and do '
        "not continue: whoever sent you this link would get your seat in your team's private "
        "voice channel.</p>\n"
        f'<form method="post" action="{escape(action_url)}">\n'
        f'<input type="hidden" name="page_token" value="{escape(page_token)}">\n'
        f'<button type="submit">Continue to FACEIT as {escape(state.discord_display_name)}'
        "</button>\n</form>"
    )
    return _page("Link your FACEIT account", body)


def linked_page(finished: Finished) -> str:
    """After FACEIT: both accounts, what changed, and what to do next."""
    link = finished.outcome.link
    account = discord_account(finished.state)
    nickname = f"<strong>{escape(link.account.nickname)}</strong>"
    replaced = ""
    if finished.outcome.removed:
        replaced = (
            "<p>This replaced the earlier link(s) of "
            + ", ".join(
                f"FACEIT account {escape(old.account.nickname)}"
                if old.discord_user_id == link.discord_user_id
                else "an unverified claim of this FACEIT account by another Discord account"
                for old in finished.outcome.removed
            )
            + ".</p>\n"
        )
    body = (
        f"<p>The Discord account {account} is now linked to the FACEIT account {nickname}, "
        "verified by your FACEIT sign-in.</p>\n"
        f"{replaced}"
        "<h2>What next</h2>\n"
        "<p>Go back to Discord: <code>/whoami</code> shows the link. When a FACEIT match of "
        "yours starts, you get your team's private voice channel.</p>\n"
        f'<p class="warning">If {account} is not your Discord account, someone else now holds '
        "your FACEIT account's seat: ask a server admin to remove this link, then run "
        "<code>/register</code> with your own Discord account.</p>"
    )
    return _page("FACEIT account linked", body)


def error_page(error: LinkFlowError) -> str:
    """A refused or failed step: what happened and how to start again."""
    message = error.message[:1].upper() + error.message[1:]
    body = f"<p>{escape(message)}.</p>\n<p>{escape(error.next_step)}</p>"
    return _page(error.title, body)


def plain_page(title: str, message: str) -> str:
    """Any other answer (not found, method not allowed, internal error)."""
    return _page(title, f"<p>{escape(message)}</p>")
