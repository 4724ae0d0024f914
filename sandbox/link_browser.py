"""A person's browser, scripted: follows the link from a `/register` reply through the registry's
page and the FACEIT sandbox's sign-in to the result page, over HTTP with cookies and redirects."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import unescape
from typing import Any

import aiohttp
from yarl import URL

_FORM = re.compile(r'<form method="post" action="([^"]*)">(.*?)</form>', re.S)
_HIDDEN = re.compile(r'<input type="hidden" name="([^"]*)" value="([^"]*)">')
_HEADING = re.compile(r"<h1>(.*?)</h1>", re.S)
TIMEOUT_S = 20.0


class SignInFailed(Exception):
    """A page of the flow was not what a person expects; the message says which."""


@dataclass(frozen=True)
class Page:
    """Where the browser is and what it shows."""

    url: str
    status: int
    html: str

    @property
    def heading(self) -> str:
        """The text of the page's <h1>."""
        found = _HEADING.search(self.html)
        return unescape(found.group(1)) if found else ""


def link_url(reply: dict[str, Any]) -> str:
    """The URL of the link button of a `/register` reply (faceit_oauth mode)."""
    for message in reply.get("messages", []):
        for row in message.get("components", []):
            for button in row.get("components", []):
                if button.get("url"):
                    return str(button["url"])
    raise SignInFailed(f"/register answered without a link button: {reply.get('content')!r}")


async def sign_in_with_faceit(url: str, player_id: str, decision: str = "allow") -> Page:
    """Open the link `url`, continue, sign in to FACEIT as `player_id` and answer `decision`;
    the page the browser ends on (the registry's result page)."""
    # unsafe: the sandboxes live on 127.0.0.1, and aiohttp keeps no cookies of IP hosts otherwise.
    jar = aiohttp.CookieJar(unsafe=True)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_S)
    async with aiohttp.ClientSession(cookie_jar=jar, timeout=timeout) as browser:
        page = await _open(browser, "GET", url)
        faceit = await _submit(browser, page, {})
        return await _submit(browser, faceit, {"player_id": player_id, "decision": decision})


async def _open(
    browser: aiohttp.ClientSession, method: str, url: str, form: dict[str, str] | None = None
) -> Page:
    async with browser.request(method, url, data=form) as response:
        page = Page(str(response.url), response.status, await response.text())
    if page.status != 200:
        raise SignInFailed(f"{method} {url} answered {page.status}: {page.heading!r}")
    return page


async def _submit(browser: aiohttp.ClientSession, page: Page, fields: dict[str, str]) -> Page:
    """Submit the page's form (its hidden fields and `fields`), following redirects."""
    found = _FORM.search(page.html)
    if found is None:
        raise SignInFailed(f"no form on {page.heading!r} ({page.url})")
    action = URL(page.url).join(URL(unescape(found.group(1))))
    form = {unescape(name): unescape(value) for name, value in _HIDDEN.findall(found.group(2))}
    return await _open(browser, "POST", str(action), {**form, **fields})
