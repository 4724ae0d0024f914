"""FACEIT Connect's endpoints in the sandbox: discovery, the code flow with PKCE, userinfo."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import BasicAuth, web
from yarl import URL

from sandbox.faceit.connect_control import ConnectControl
from sandbox.faceit.connect_faults import ConnectFault, ConnectFaults
from sandbox.faceit.connect_grants import (
    ACCESS_TOKEN_TTL_S,
    DEFAULT_CODE_TTL_S,
    Grant,
    Grants,
    OAuthClient,
    is_s256_challenge,
    jwt_hs256,
)
from sandbox.faceit.connect_pages import error_page, sign_in_page
from sandbox.faceit.world import World

logger = logging.getLogger(__name__)

# FACEIT's own paths (reference: faceit.md); the authorization page is on accounts.faceit.com
# there, here it is `/accounts` on the same server.
DISCOVERY_PATH = "/auth/v1/openid_configuration"
AUTHORIZE_PATH = "/accounts"
TOKEN_PATH = "/auth/v1/oauth/token"
USERINFO_PATH = "/auth/v1/resources/userinfo"
JWKS_PATH = "/auth/v1/oauth/certs"
ISSUER_PATH = "/auth"

SCOPES = ("openid", "profile", "email", "membership")
# The parameters of an authorization request that the sign-in form carries to its POST.
AUTHORIZE_PARAMS = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _oauth_error(status: int, error: str, description: str, **headers: str) -> web.Response:
    return web.json_response(
        {"error": error, "error_description": description},
        status=status,
        headers={**_NO_STORE, **headers},
    )


def _redirect(target: str, **query: str | None) -> web.Response:
    url = URL(target).update_query({k: v for k, v in query.items() if v is not None})
    return web.Response(
        status=302,
        headers={
            "Location": str(url),
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
        },
    )


def _params(*sources: Iterable[tuple[str, Any]]) -> dict[str, str] | None:
    """The request's parameters, or None when one is given twice (RFC 6749 3.1)."""
    params: dict[str, str] = {}
    for source in sources:
        for key, value in source:
            if key in params:
                return None
            if isinstance(value, str):
                params[key] = value
    return params


class FaceitConnect:
    """FACEIT Connect endpoints and their `/_sandbox/oauth/` control routes.

    Players come from the shared `World`; clients, codes and tokens live here.
    """

    def __init__(
        self,
        *,
        world: World,
        clock: Callable[[], float] = time.time,
        code_ttl_s: float = DEFAULT_CODE_TTL_S,
    ) -> None:
        self._world = world
        self._clock = clock
        self._grants = Grants(clock=clock, code_ttl_s=code_ttl_s)
        self.faults = ConnectFaults()
        self._control = ConnectControl(grants=self._grants, faults=self.faults)

    def routes(self) -> list[web.RouteDef]:
        """The Connect and control routes, to add to the top-level application."""
        return [
            web.get(DISCOVERY_PATH, self.discovery),
            web.get(AUTHORIZE_PATH, self.authorize_page),
            web.post(AUTHORIZE_PATH, self.authorize),
            web.post(TOKEN_PATH, self.token),
            web.get(USERINFO_PATH, self.userinfo),
            web.get(JWKS_PATH, self.jwks),
            *self._control.routes(),
        ]

    def register(self, client: OAuthClient) -> bool:
        """Register or replace a client (a new secret invalidates the old one); True if new."""
        return self._grants.register(client)

    async def discovery(self, request: web.Request) -> web.Response:
        """`GET /auth/v1/openid_configuration`: endpoints on this server."""
        base = str(request.url.origin())
        return web.json_response(
            {
                "issuer": base + ISSUER_PATH,
                "authorization_endpoint": base + AUTHORIZE_PATH,
                "token_endpoint": base + TOKEN_PATH,
                "userinfo_endpoint": base + USERINFO_PATH,
                "jwks_uri": base + JWKS_PATH,
                "response_types_supported": ["code"],
                "response_modes_supported": ["query"],
                "grant_types_supported": ["authorization_code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["HS256"],
                "scopes_supported": list(SCOPES),
                "claims_supported": ["sub", "guid", "nickname", "picture"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            }
        )

    def _refusal(self, params: dict[str, str]) -> web.Response | None:
        """Why an authorization request is refused, or None when it is acceptable.

        An unknown client or redirect_uri gets a page here and is never redirected to
        (RFC 6749 4.1.2.1); other mistakes are sent back to the client's redirect_uri.
        """
        client = self._grants.client(params.get("client_id", ""))
        if client is None:
            return error_page("Unknown client_id.")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.redirect_uris:
            return error_page("redirect_uri is not registered for this client.")
        state = params.get("state")
        if params.get("response_type") != "code":
            return _redirect(
                redirect_uri,
                error="unsupported_response_type",
                error_description="response_type must be code",
                state=state,
            )
        if not is_s256_challenge(params.get("code_challenge", "")):
            problem = "code_challenge (S256, 43 characters) is required"
        elif params.get("code_challenge_method") != "S256":
            problem = "code_challenge_method must be S256"
        else:
            return None
        return _redirect(
            redirect_uri, error="invalid_request", error_description=problem, state=state
        )

    async def authorize_page(self, request: web.Request) -> web.Response:
        """`GET /accounts?client_id&redirect_uri&response_type=code&code_challenge...`."""
        params = _params(request.query.items())
        if params is None:
            return error_page("A parameter is given more than once.")
        refusal = self._refusal(params)
        if refusal is not None:
            return refusal
        return sign_in_page(
            action=AUTHORIZE_PATH,
            client_id=params["client_id"],
            params={key: params[key] for key in AUTHORIZE_PARAMS if key in params},
            players=self._world.players(),
        )

    async def authorize(self, request: web.Request) -> web.Response:
        """`POST /accounts`: the request's parameters plus `player_id` and `decision`."""
        form = await request.post()
        params = _params(request.query.items(), form.items())
        if params is None:
            return error_page("A parameter is given more than once.")
        refusal = self._refusal(params)
        if refusal is not None:
            return refusal
        redirect_uri, state = params["redirect_uri"], params.get("state")
        decision = params.get("decision")
        if decision == "deny":
            logger.info("FACEIT Connect: consent denied to client %s", params["client_id"])
            return _redirect(
                redirect_uri,
                error="access_denied",
                error_description="The user denied access",
                state=state,
            )
        if decision != "allow":
            return error_page("decision must be allow or deny.")
        player = self._world.player(params.get("player_id", ""))
        if player is None:
            return error_page("Choose a player to sign in as.")
        code = self._grants.grant(
            client_id=params["client_id"],
            redirect_uri=redirect_uri,
            player_id=player.player_id,
            code_challenge=params["code_challenge"],
            scope=params.get("scope", "openid profile"),
            nonce=params.get("nonce"),
        )
        logger.info(
            "FACEIT Connect: player %s signed in to client %s",
            player.player_id,
            params["client_id"],
        )
        return _redirect(redirect_uri, code=code, state=state)

    async def _early_fault(self, fault: ConnectFault | None) -> web.Response | None:
        """The answer an injected fault gives instead of the real one (None: answer normally)."""
        if fault is None:
            return None
        logger.info("FACEIT Connect: injecting %s on %s", fault.kind, fault.endpoint)
        if fault.kind == "delay":
            await asyncio.sleep(fault.delay_ms / 1000)  # injected slowness, on purpose
            return None
        if fault.kind == "status":
            return _oauth_error(fault.status, "server_error", "injected failure")
        if fault.kind == "garbage":
            return web.Response(
                text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        if fault.kind == "empty":
            return web.json_response({})
        return None

    def _client(self, request: web.Request) -> OAuthClient | None:
        """The client authenticated by HTTP Basic, or None."""
        try:
            credentials = BasicAuth.decode(request.headers.get("Authorization", ""))
        except ValueError:
            return None
        return self._grants.authenticate(credentials.login, credentials.password)

    async def token(self, request: web.Request) -> web.Response:
        """`POST /auth/v1/oauth/token`: a code (with Basic client auth and PKCE) for tokens."""
        early = await self._early_fault(self.faults.take("token"))
        if early is not None:
            return early
        client = self._client(request)
        if client is None:
            return _oauth_error(
                401,
                "invalid_client",
                "client authentication failed",
                **{"WWW-Authenticate": 'Basic realm="FACEIT Connect"'},
            )
        form = await request.post()
        if form.get("grant_type") != "authorization_code":
            return _oauth_error(
                400, "unsupported_grant_type", "grant_type must be authorization_code"
            )
        code, redirect_uri, verifier = (
            form.get("code"),
            form.get("redirect_uri"),
            form.get("code_verifier"),
        )
        if not (
            isinstance(code, str) and isinstance(redirect_uri, str) and isinstance(verifier, str)
        ):
            return _oauth_error(
                400, "invalid_request", "code, redirect_uri and code_verifier are required"
            )
        grant = self._grants.redeem(code, client, redirect_uri, verifier)
        if isinstance(grant, str):
            return _oauth_error(400, "invalid_grant", grant)
        return self._issue(grant, client, base=str(request.url.origin()))

    def _issue(self, grant: Grant, client: OAuthClient, *, base: str) -> web.Response:
        now = self._clock()
        access_token = self._grants.issue(grant, now)
        player = self._world.player(grant.player_id)
        claims: dict[str, Any] = {
            "iss": base + ISSUER_PATH,
            "sub": grant.player_id,
            "aud": client.client_id,
            "iat": int(now),
            "exp": int(now) + ACCESS_TOKEN_TTL_S,
            "guid": grant.player_id,
            "nickname": player.nickname if player else "",
            "picture": player.avatar if player else "",
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        logger.info("FACEIT Connect: tokens issued to client %s", client.client_id)
        return web.json_response(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_TTL_S,
                "scope": grant.scope,
                "id_token": jwt_hs256(claims, client.client_secret),
            },
            headers=_NO_STORE,
        )

    async def userinfo(self, request: web.Request) -> web.Response:
        """`GET /auth/v1/resources/userinfo` with `Authorization: Bearer <access_token>`."""
        fault = self.faults.take("userinfo")
        early = await self._early_fault(fault)
        if early is not None:
            return early
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        token = self._grants.live_token(value.strip()) if scheme.lower() == "bearer" else None
        player = self._world.player(token.player_id) if token else None
        if player is None:
            return _oauth_error(
                401,
                "invalid_token",
                "the access token is missing, unknown or expired",
                **{"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        info = {
            "guid": player.player_id,
            "sub": player.player_id,
            "nickname": player.nickname,
            "picture": player.avatar,
        }
        if fault is not None and fault.kind == "no_guid":
            del info["guid"]
        answer = web.json_response(info, headers=_NO_STORE)
        self._control.userinfo_answers.append(
            {"player_id": player.player_id, "answered_at": time.monotonic()}
        )
        return answer

    async def jwks(self, request: web.Request) -> web.Response:
        """`GET /auth/v1/oauth/certs`: no public keys (id tokens are HS256, see the README)."""
        return web.json_response({"keys": []})
