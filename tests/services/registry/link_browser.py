"""A scripted browser for the link flow: httpx with a cookie jar, following each step the way
a person's browser does (link page, continue form, FACEIT sign-in form, callback)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from html import unescape
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


@dataclass(frozen=True)
class Page:
    """An HTML answer: status, text and headers."""

    status: int
    html: str
    headers: httpx.Headers

    @property
    def heading(self) -> str:
        """The text of the first <h1>."""
        found = re.search(r"<h1>(.*?)</h1>", self.html, re.S)
        return unescape(found.group(1)) if found else ""

    def hidden(self, name: str) -> str:
        """The value of the hidden form field `name`."""
        for key, value in _HIDDEN.findall(self.html):
            if key == name:
                return unescape(value)
        raise AssertionError(f"no hidden field {name!r} in the page")


def _page(response: httpx.Response) -> Page:
    return Page(response.status_code, response.text, response.headers)


def on(url: str, http_url: str) -> str:
    """`url` sent to another replica: same path and query, `http_url`'s scheme and host."""
    parts, replica = urlsplit(url), urlsplit(http_url)
    return urlunsplit(parts._replace(scheme=replica.scheme, netloc=replica.netloc))


class Browser:
    """One browser: its own cookies; it never follows a redirect by itself."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.http = client

    async def open(self, url: str) -> Page:
        """GET a page."""
        return _page(await self.http.get(url))

    async def press_continue(self, url: str, page: Page) -> httpx.Response:
        """Submit the link page's form (to `url`): FACEIT's sign-in URL in Location if 302."""
        form = {"page_token": page.hidden("page_token")}
        return await self.http.post(url, data=form)

    async def sign_in(self, authorize_url: str, player_id: str, decision: str = "allow") -> str:
        """Sign in at the FACEIT sandbox as `player_id`; the callback URL it redirects to."""
        sign_in = await self.http.get(authorize_url)
        assert sign_in.status_code == 200, sign_in.text
        parts = urlsplit(authorize_url)
        form = dict(parse_qsl(parts.query))
        form.update(player_id=player_id, decision=decision)
        action = urlunsplit(parts._replace(query=""))
        answer = await self.http.post(action, data=form)
        assert answer.status_code == 302, answer.text
        return answer.headers["location"]

    async def link(self, url: str, player_id: str, *, finish_on: str | None = None) -> Page:
        """The whole flow from the link URL to the result page (optionally on another replica)."""
        page = await self.open(url)
        assert page.status == 200, page.html
        departed = await self.press_continue(url, page)
        assert departed.status_code == 302, departed.text
        callback = await self.sign_in(departed.headers["location"], player_id)
        return await self.open(on(callback, finish_on) if finish_on else callback)


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    """A fresh browser (empty cookie jar)."""
    async with httpx.AsyncClient(timeout=20.0, follow_redirects=False) as client:
        yield Browser(client)
