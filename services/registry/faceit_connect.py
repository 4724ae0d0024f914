"""FACEIT Connect (OAuth2 / OpenID Connect) client: discovery, authorization URL, code
exchange with PKCE and HTTP Basic client authentication, userinfo.

Endpoints come from the discovery document (public code circulates wrong ones). Nothing here
keeps a token: the access token lives only for the userinfo call that follows the exchange.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
from pydantic import SecretStr

from services.kit.limits import MAX_ID_BYTES, MAX_NAME_CHARS, MAX_TEXT_CHARS
from services.registry.urls import url_problem

logger = logging.getLogger(__name__)

SCOPES = "openid profile"
GUID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""A FACEIT player id is a UUID; this much keeps it safe in a Data API path and a log line."""
MAX_ANSWER_BYTES = 64 * 1024
"""The largest answer read from FACEIT: a discovery document, a token or userinfo is a few KiB."""
DISCOVERY_TTL_S = 3600.0
"""How long a fetched discovery document is used before it is fetched again."""


class ConnectError(Exception):
    """A step with FACEIT Connect failed; `message` says what happened, for logs and pages."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConnectRefused(ConnectError):
    """FACEIT refused the code: used, expired, issued to another client, or the PKCE verifier
    does not match. The user has to start again."""


class ConnectUnavailable(ConnectError):
    """FACEIT could not be reached, answered 5xx, or was too slow."""


class ConnectBadAnswer(ConnectError):
    """FACEIT answered something that is not what the protocol promises."""


@dataclass(frozen=True)
class ConnectEndpoints:
    """The endpoints of the discovery document the flow uses."""

    authorization_endpoint: str
    token_endpoint: str
    userinfo_endpoint: str


@dataclass(frozen=True)
class Tokens:
    """The token endpoint's answer: the access token, and the FACEIT player id its id_token
    names ("" when none). The id_token is not verified: that id is a hint to start work early
    (the Data API profile); userinfo alone says who signed in."""

    access_token: str
    guid_hint: str


@dataclass(frozen=True)
class FaceitIdentity:
    """Who signed in: userinfo's `guid` (the Data API's player_id), nickname and picture."""

    guid: str
    nickname: str
    picture: str


@dataclass(frozen=True)
class Pkce:
    """A PKCE pair: the verifier kept on our side, its S256 challenge sent to FACEIT."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A fresh verifier (43 characters of 256 random bits) and its challenge."""
        verifier = secrets.token_urlsafe(32)
        return cls(verifier, s256(verifier))


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def authorization_url(
    endpoints: ConnectEndpoints, *, client_id: str, state: str, challenge: str, redirect_uri: str
) -> str:
    """Where the browser goes to sign in with FACEIT (the endpoint's own query is kept)."""
    parts = urlsplit(endpoints.authorization_endpoint)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": SCOPES,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    joined = f"{parts.query}&{query}" if parts.query else query
    return urlunsplit(parts._replace(query=joined, fragment=""))


def _text(body: dict[str, object], key: str, limit: int) -> str:
    value = body.get(key)
    if isinstance(value, str) and len(value.encode()) <= limit:
        return value.strip()
    return ""


def _id_token_guid(body: dict[str, object]) -> str:
    """The `guid` claim of the token answer's id_token, read without verifying it; "" when
    there is no id_token or no usable guid in it."""
    parts = _text(body, "id_token", MAX_TEXT_CHARS * 8).split(".")
    if len(parts) != 3:
        return ""
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return ""
    guid = claims.get("guid") if isinstance(claims, dict) else None
    return guid if isinstance(guid, str) and GUID_PATTERN.fullmatch(guid) else ""


class FaceitConnectClient:
    """Talks to FACEIT Connect for one OAuth client; one aiohttp session, no retries (a code
    works once, and a person is waiting)."""

    def __init__(
        self,
        discovery_url: str,
        client_id: str,
        client_secret: SecretStr,
        *,
        timeout: float,
        connect_timeout: float,
    ) -> None:
        self.client_id = client_id
        self._discovery_url = discovery_url
        credentials = f"{client_id}:{client_secret.get_secret_value()}".encode()
        # HTTP Basic of client_id:client_secret, as FACEIT's staff describe the token request.
        self._basic = "Basic " + base64.b64encode(credentials).decode("ascii")
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        self._endpoints: ConnectEndpoints | None = None
        self._fetched_at = 0.0
        self._discovering = asyncio.Lock()

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def endpoints(self) -> ConnectEndpoints:
        """The endpoints of the discovery document, fetched at most once an hour."""
        async with self._discovering:
            fresh = time.monotonic() - self._fetched_at < DISCOVERY_TTL_S
            if self._endpoints is None or not fresh:
                self._endpoints = await self._discover()
                self._fetched_at = time.monotonic()
            return self._endpoints

    async def _discover(self) -> ConnectEndpoints:
        status, body = await self._call("discovery", "GET", self._discovery_url)
        if status != 200:
            raise self._failure("discovery", status, body)
        urls = {}
        for key in ("authorization_endpoint", "token_endpoint", "userinfo_endpoint"):
            value = _text(body, key, MAX_TEXT_CHARS)
            problem = url_problem(value) if value else "is missing"
            if problem is not None:
                raise ConnectBadAnswer(f"the discovery document's {key} {problem}")
            urls[key] = value
        return ConnectEndpoints(**urls)

    async def exchange_code(self, code: str, verifier: str, redirect_uri: str) -> Tokens:
        """The tokens for `code`; ConnectRefused when FACEIT refuses the code."""
        endpoints = await self.endpoints()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        headers = {"Authorization": self._basic}
        status, body = await self._call(
            "token", "POST", endpoints.token_endpoint, headers=headers, form=form
        )
        if status == 400 and body.get("error") in ("invalid_grant", "invalid_request"):
            raise ConnectRefused(f"FACEIT refused the code ({body.get('error')})")
        if status != 200:
            raise self._failure("token", status, body)
        token = _text(body, "access_token", MAX_TEXT_CHARS * 8)
        if not token:
            raise ConnectBadAnswer("FACEIT's token answer has no access_token")
        return Tokens(token, _id_token_guid(body))

    async def userinfo(self, access_token: str) -> FaceitIdentity:
        """Who the token belongs to; ConnectBadAnswer when userinfo has no usable guid."""
        endpoints = await self.endpoints()
        headers = {"Authorization": f"Bearer {access_token}"}
        status, body = await self._call(
            "userinfo", "GET", endpoints.userinfo_endpoint, headers=headers
        )
        if status != 200:
            raise self._failure("userinfo", status, body)
        guid = _text(body, "guid", MAX_ID_BYTES)
        if not guid:
            raise ConnectBadAnswer("FACEIT's userinfo has no guid (the FACEIT player id)")
        if not GUID_PATTERN.fullmatch(guid):
            raise ConnectBadAnswer("FACEIT's userinfo guid is not a FACEIT player id")
        nickname = _text(body, "nickname", MAX_NAME_CHARS * 4)[:MAX_NAME_CHARS]
        picture = _text(body, "picture", MAX_TEXT_CHARS)
        return FaceitIdentity(guid=guid, nickname=nickname or guid, picture=picture)

    async def _call(
        self,
        step: str,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, object]]:
        """(status, JSON object body) of one request; failures to reach FACEIT and bodies that
        are not a JSON object (of any status but 5xx) raise."""
        request = self._http().request(
            method, url, headers=headers, data=form, allow_redirects=False
        )
        try:
            async with request as answer:
                raw = await answer.content.read(MAX_ANSWER_BYTES + 1)
                status = answer.status
        except TimeoutError:
            raise ConnectUnavailable(f"FACEIT's {step} endpoint did not answer in time") from None
        except aiohttp.ClientError as error:
            raise ConnectUnavailable(
                f"FACEIT's {step} endpoint cannot be reached: {error!r}"
            ) from None
        if status >= 500:
            raise ConnectUnavailable(f"FACEIT's {step} endpoint answered {status}")
        if len(raw) > MAX_ANSWER_BYTES:
            raise ConnectBadAnswer(f"FACEIT's {step} answer is over {MAX_ANSWER_BYTES} bytes")
        try:
            body = json.loads(raw)
        except ValueError:
            raise ConnectBadAnswer(f"FACEIT's {step} answer ({status}) is not JSON") from None
        if not isinstance(body, dict):
            raise ConnectBadAnswer(f"FACEIT's {step} answer ({status}) is not a JSON object")
        return status, body

    @staticmethod
    def _failure(step: str, status: int, body: dict[str, object]) -> ConnectError:
        error = _text(body, "error", MAX_NAME_CHARS)
        if status == 401 and step == "token":
            logger.error("FACEIT refused the registry's OAuth client credentials (%s)", error)
        return ConnectBadAnswer(f"FACEIT's {step} endpoint answered {status} {error}".rstrip())
