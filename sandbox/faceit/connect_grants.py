"""FACEIT Connect bookkeeping: registered clients, authorization codes, access tokens, PKCE."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

DEFAULT_CODE_TTL_S = 60.0
ACCESS_TOKEN_TTL_S = 3600
# RFC 7636: a verifier is 43..128 unreserved characters; an S256 challenge is 43 base64url ones.
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-_]{43}")


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier: base64url(sha256(verifier)) without padding."""
    return _b64url(hashlib.sha256(verifier.encode()).digest())


def is_s256_challenge(value: str) -> bool:
    """Whether `value` has the form of an S256 code challenge (43 base64url characters)."""
    return _CHALLENGE.fullmatch(value) is not None


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt_hs256(claims: dict[str, Any], key: str) -> str:
    """A compact JWT of `claims`, signed HS256 with `key` (OIDC's choice for a client secret)."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


@dataclass(frozen=True)
class OAuthClient:
    """A registered FACEIT Connect client (App Studio's OAuth2 client)."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]


@dataclass
class Grant:
    """What an authorization code stands for, until it is redeemed or expires."""

    client_id: str
    redirect_uri: str
    player_id: str
    code_challenge: str
    scope: str
    nonce: str | None
    expires_at: float
    used: bool = False
    access_tokens: list[str] = field(default_factory=list)


@dataclass
class AccessToken:
    """An issued access token: whose it is and until when it is good."""

    client_id: str
    player_id: str
    expires_at: float


class Grants:
    """The clients, the codes issued to them and the access tokens those were exchanged for."""

    def __init__(self, *, clock: Callable[[], float], code_ttl_s: float) -> None:
        self._clock = clock
        self._code_ttl_s = code_ttl_s
        self._clients: dict[str, OAuthClient] = {}
        self._grants: dict[str, Grant] = {}
        self._tokens: dict[str, AccessToken] = {}

    def register(self, client: OAuthClient) -> bool:
        """Register or replace a client (a new secret invalidates the old one); True if new."""
        is_new = client.client_id not in self._clients
        self._clients[client.client_id] = client
        return is_new

    def client(self, client_id: str) -> OAuthClient | None:
        """The registered client with this id, if any."""
        return self._clients.get(client_id)

    def authenticate(self, client_id: str, secret: str) -> OAuthClient | None:
        """The client these credentials are right for, or None."""
        client = self._clients.get(client_id)
        if client is None or not hmac.compare_digest(
            secret.encode(), client.client_secret.encode()
        ):
            return None
        return client

    def grant(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        player_id: str,
        code_challenge: str,
        scope: str,
        nonce: str | None,
    ) -> str:
        """A new authorization code for what the player consented to."""
        code = secrets.token_urlsafe(32)
        self._grants[code] = Grant(
            client_id=client_id,
            redirect_uri=redirect_uri,
            player_id=player_id,
            code_challenge=code_challenge,
            scope=scope,
            nonce=nonce,
            expires_at=self._clock() + self._code_ttl_s,
        )
        return code

    def redeem(
        self, code: str, client: OAuthClient, redirect_uri: str, verifier: str
    ) -> Grant | str:
        """The grant of `code`, or why it cannot be redeemed. Any attempt uses the code up."""
        grant = self._grants.get(code)
        if grant is None or grant.client_id != client.client_id:
            return "unknown code"
        if grant.used:
            # RFC 6749 4.1.2: a replayed code revokes what it was exchanged for.
            for token in grant.access_tokens:
                self._tokens.pop(token, None)
            return "code already used"
        grant.used = True
        if self._clock() >= grant.expires_at:
            return "code expired"
        if redirect_uri != grant.redirect_uri:
            return "redirect_uri does not match the authorization request"
        if not _VERIFIER.fullmatch(verifier) or not hmac.compare_digest(
            s256(verifier), grant.code_challenge
        ):
            return "code_verifier does not match the code_challenge"
        return grant

    def issue(self, grant: Grant, now: float) -> str:
        """A new access token for a redeemed grant, good for `ACCESS_TOKEN_TTL_S` from `now`."""
        access_token = secrets.token_urlsafe(32)
        self._tokens[access_token] = AccessToken(
            grant.client_id, grant.player_id, now + ACCESS_TOKEN_TTL_S
        )
        grant.access_tokens.append(access_token)
        return access_token

    def live_token(self, access_token: str) -> AccessToken | None:
        """The access token if it was issued, is not revoked and has not expired."""
        token = self._tokens.get(access_token)
        if token is None or self._clock() >= token.expires_at:
            return None
        return token
