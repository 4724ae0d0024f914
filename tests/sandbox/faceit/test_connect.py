"""Tests of FACEIT Connect in the sandbox over real HTTP: code flow with PKCE and each refusal."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sandbox.faceit.client import FaceitSandboxClient, SandboxControlError
from sandbox.faceit.server import FaceitSandbox
from tests.sandbox.faceit.conftest import API_KEY

CLIENT_ID = "3f1c2a4e-0000-4000-8000-00000000c11e"
CLIENT_SECRET = "s3cret-of-the-registry"
REDIRECT_URI = "http://127.0.0.1:9/link/callback"
AUTHORIZE = "/accounts"
TOKEN = "/auth/v1/oauth/token"
USERINFO = "/auth/v1/resources/userinfo"


@dataclass
class Pkce:
    """A PKCE pair made by the test itself (RFC 7636, S256)."""

    verifier: str = field(default_factory=lambda: secrets.token_urlsafe(48))

    @property
    def challenge(self) -> str:
        """base64url(sha256(verifier)) without padding."""
        digest = hashlib.sha256(self.verifier.encode()).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Form:
    """A parsed HTML form: its attributes, inputs and submit buttons."""

    attrs: dict[str, str]
    inputs: list[dict[str, str]] = field(default_factory=list)
    buttons: list[dict[str, str]] = field(default_factory=list)


class FormParser(HTMLParser):
    """Collects the forms, the h1 text and every label's text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[Form] = []
        self.labels: dict[str, str] = {}
        self.heading = ""
        self._label: str | None = None
        self._in_h1 = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {key: value or "" for key, value in attrs}
        if tag == "form":
            self.forms.append(Form(values))
        elif tag == "input" and self.forms:
            self.forms[-1].inputs.append(values)
        elif tag == "button" and self.forms:
            self.forms[-1].buttons.append(values)
        elif tag == "label":
            self._label = values.get("for", "")
            self.labels[self._label] = ""
        elif tag == "h1":
            self._in_h1 = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._label = None
        elif tag == "h1":
            self._in_h1 = False

    def handle_data(self, data: str) -> None:
        if self._label is not None:
            self.labels[self._label] += data.strip()
        if self._in_h1:
            self.heading += data


def parse(html: str) -> FormParser:
    """The page's forms, labels and heading."""
    parser = FormParser()
    parser.feed(html)
    return parser


def authorize_params(pkce: Pkce, **changes: str | None) -> dict[str, str]:
    """A valid authorization request, with `changes` applied (None removes a parameter)."""
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile",
        "state": "state-" + secrets.token_urlsafe(8),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **changes,
    }
    return {key: value for key, value in params.items() if value is not None}


def redirect_query(response: httpx.Response) -> dict[str, str]:
    """The query of a 302 answer's Location, which must point at the registered redirect URI."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.split("?")[0] == REDIRECT_URI
    return {key: values[0] for key, values in parse_qs(urlsplit(location).query).items()}


@pytest.fixture
async def http(faceit: FaceitSandbox) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client on the sandbox that does not follow redirects."""
    async with httpx.AsyncClient(base_url=faceit.url, follow_redirects=False) as client:
        yield client


@pytest.fixture
async def players(control: FaceitSandboxClient) -> list[dict[str, Any]]:
    """A registered OAuth client and two players to sign in as."""
    await control.register_oauth_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
    return [
        await control.create_player("Alice", avatar="https://example.test/alice.png"),
        await control.create_player("Bob"),
    ]


async def sign_in(
    http: httpx.AsyncClient, player_id: str, pkce: Pkce, decision: str = "allow", **changes: Any
) -> httpx.Response:
    """POST the sign-in form as FACEIT's page would send it."""
    form = {**authorize_params(pkce, **changes), "player_id": player_id, "decision": decision}
    return await http.post(AUTHORIZE, data=form)


async def send_authorization(
    http: httpx.AsyncClient, method: str, params: dict[str, str], player_id: str
) -> httpx.Response:
    """The authorization request as the page's GET, or as the form's POST allowing `player_id`."""
    if method == "GET":
        return await http.get(AUTHORIZE, params=params)
    form = {**params, "player_id": player_id, "decision": "allow"}
    return await http.post(AUTHORIZE, data=form)


async def get_code(http: httpx.AsyncClient, player_id: str, pkce: Pkce) -> str:
    """An authorization code for `player_id`."""
    return redirect_query(await sign_in(http, player_id, pkce))["code"]


async def exchange(
    http: httpx.AsyncClient,
    code: str,
    verifier: str,
    *,
    auth: tuple[str, str] | None = (CLIENT_ID, CLIENT_SECRET),
    redirect_uri: str = REDIRECT_URI,
    timeout: float = 5.0,
) -> httpx.Response:
    """The token request: Basic client auth, code, redirect_uri and verifier."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": verifier,
    }
    return await http.post(TOKEN, data=form, auth=auth, timeout=timeout)


def jwt_parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, claims, signing input and signature of a compact JWT."""
    header, payload, signature = token.split(".")

    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    signing_input = f"{header}.{payload}".encode()
    return json.loads(decode(header)), json.loads(decode(payload)), signing_input, decode(signature)


async def test_discovery_points_at_the_sandbox(
    faceit: FaceitSandbox, http: httpx.AsyncClient
) -> None:
    """The discovery document names this sandbox's endpoints, code flow, S256 and Basic auth."""
    response = await http.get("/auth/v1/openid_configuration")
    assert response.status_code == 200
    config = response.json()
    assert config["issuer"] == faceit.url + "/auth"
    assert config["authorization_endpoint"] == faceit.url + AUTHORIZE
    assert config["token_endpoint"] == faceit.url + TOKEN
    assert config["userinfo_endpoint"] == faceit.url + USERINFO
    assert config["jwks_uri"] == faceit.url + "/auth/v1/oauth/certs"
    assert config["response_types_supported"] == ["code"]
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["token_endpoint_auth_methods_supported"] == ["client_secret_basic"]
    for endpoint in ("token_endpoint", "userinfo_endpoint", "jwks_uri"):
        assert (await http.get(config[endpoint])).status_code != 404


async def test_sign_in_page_lists_players_in_a_form(
    http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """GET authorize shows an unframeable page: a radio per player, allow/deny, hidden params."""
    params = authorize_params(Pkce())
    response = await http.get(AUTHORIZE, params=params)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    page = parse(response.text)
    assert "Sign in with FACEIT" in page.heading
    [form] = page.forms
    assert form.attrs["method"] == "post" and form.attrs["action"] == AUTHORIZE
    hidden = {i["name"]: i["value"] for i in form.inputs if i["type"] == "hidden"}
    assert hidden == params
    radios = [i for i in form.inputs if i["type"] == "radio"]
    assert {r["name"] for r in radios} == {"player_id"}
    assert [r["value"] for r in radios] == [p["player_id"] for p in players]
    assert [page.labels[r["id"]] for r in radios] == ["Alice", "Bob"]
    assert [(b["name"], b["value"]) for b in form.buttons] == [
        ("decision", "allow"),
        ("decision", "deny"),
    ]


async def test_full_code_flow_with_pkce(
    faceit: FaceitSandbox, http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """Sign in through the page's form, redeem the code with PKCE, read userinfo as Alice."""
    alice = players[0]
    pkce = Pkce()
    params = authorize_params(pkce, nonce="n-1")
    [form] = parse((await http.get(AUTHORIZE, params=params)).text).forms
    fields = {i["name"]: i["value"] for i in form.inputs if i["type"] == "hidden"}
    fields |= {"player_id": alice["player_id"], "decision": "allow"}
    callback = redirect_query(await http.post(form.attrs["action"], data=fields))
    assert callback["state"] == params["state"] and set(callback) == {"code", "state"}

    response = await exchange(http, callback["code"], pkce.verifier)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    tokens = response.json()
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] > 0
    header, claims, signing_input, signature = jwt_parts(tokens["id_token"])
    assert header["alg"] == "HS256"
    expected = hmac.new(CLIENT_SECRET.encode(), signing_input, hashlib.sha256).digest()
    assert hmac.compare_digest(signature, expected)
    assert claims["iss"] == faceit.url + "/auth" and claims["aud"] == CLIENT_ID
    assert (claims["guid"], claims["nonce"]) == (alice["player_id"], "n-1")

    info = await http.get(USERINFO, headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert info.status_code == 200
    body = info.json()
    assert (body["guid"], body["nickname"], body["picture"]) == (
        alice["player_id"],
        "Alice",
        "https://example.test/alice.png",
    )


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"redirect_uri": "https://evil.example/steal"}, "redirect_uri is not registered"),
        ({"redirect_uri": REDIRECT_URI + "/"}, "redirect_uri is not registered"),
        ({"redirect_uri": None}, "redirect_uri is not registered"),
        ({"client_id": "nobody"}, "Unknown client_id"),
    ],
)
async def test_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect(
    http: httpx.AsyncClient,
    players: list[dict[str, Any]],
    method: str,
    change: dict[str, str | None],
    message: str,
) -> None:
    """An unregistered redirect_uri (even one character off) or client is never redirected to."""
    params = authorize_params(Pkce(), **change)
    response = await send_authorization(http, method, params, players[0]["player_id"])
    assert response.status_code == 400
    assert "location" not in response.headers
    assert message in response.text


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
    ],
)
async def test_a_request_without_s256_pkce_or_code_is_sent_back_with_an_error(
    http: httpx.AsyncClient,
    players: list[dict[str, Any]],
    method: str,
    change: dict[str, str | None],
    error: str,
) -> None:
    """A registered client's bad request goes back to its redirect_uri with error and state."""
    params = authorize_params(Pkce(), **change)
    response = await send_authorization(http, method, params, players[0]["player_id"])
    query = redirect_query(response)
    assert (query["error"], query["state"]) == (error, params["state"])
    assert "code" not in query


async def test_a_repeated_parameter_is_refused_with_a_page(
    http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """A parameter given twice (e.g. two redirect_uris) gets an error page, no redirect."""
    params = [*authorize_params(Pkce()).items(), ("redirect_uri", "https://evil.example/")]
    response = await http.get(AUTHORIZE, params=params)
    assert response.status_code == 400 and "location" not in response.headers


async def test_denied_consent_redirects_with_access_denied_and_state(
    http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """Deny answers 302 to the redirect_uri with error=access_denied, the state and no code."""
    response = await sign_in(http, "", Pkce(), decision="deny", state="st-9")
    query = redirect_query(response)
    assert (query["error"], query["state"]) == ("access_denied", "st-9")
    assert "code" not in query


@pytest.mark.parametrize(
    ("player", "decision"), [("no-such-player", "allow"), ("", "allow"), ("alice", "maybe")]
)
async def test_a_bad_sign_in_post_gets_an_error_page(
    http: httpx.AsyncClient, players: list[dict[str, Any]], player: str, decision: str
) -> None:
    """Allow without a known player, or a decision other than allow/deny, issues no code."""
    player_id = players[0]["player_id"] if player == "alice" else player
    response = await sign_in(http, player_id, Pkce(), decision=decision)
    assert response.status_code == 400 and "location" not in response.headers


@pytest.mark.parametrize(
    "auth",
    [None, (CLIENT_ID, "wrong-secret"), ("other-client", CLIENT_SECRET)],
    ids=["no-auth", "wrong-secret", "unknown-client"],
)
async def test_token_refuses_bad_client_authentication(
    http: httpx.AsyncClient, players: list[dict[str, Any]], auth: tuple[str, str] | None
) -> None:
    """Without the right Basic credentials the token endpoint answers 401 invalid_client."""
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    response = await exchange(http, code, pkce.verifier, auth=auth)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response.headers["www-authenticate"].startswith("Basic")
    # The refused attempt did not use the code up: the real client can still redeem it.
    assert (await exchange(http, code, pkce.verifier)).status_code == 200


async def test_client_secret_in_the_body_is_not_accepted(
    http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """Only client_secret_basic is supported: credentials in the form are refused."""
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    response = await http.post(TOKEN, data=form)
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"


@pytest.mark.parametrize(
    ("verifier", "redirect_uri"),
    [
        (Pkce().verifier, REDIRECT_URI),
        ("short", REDIRECT_URI),
        (None, "http://127.0.0.1:9/other"),
    ],
    ids=["wrong-verifier", "malformed-verifier", "other-redirect-uri"],
)
async def test_token_refuses_a_wrong_verifier_or_redirect_uri_and_burns_the_code(
    http: httpx.AsyncClient,
    players: list[dict[str, Any]],
    verifier: str | None,
    redirect_uri: str,
) -> None:
    """A verifier whose S256 is not the challenge, or another redirect_uri: invalid_grant."""
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    response = await exchange(http, code, verifier or pkce.verifier, redirect_uri=redirect_uri)
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"
    retry = await exchange(http, code, pkce.verifier)
    assert retry.status_code == 400 and retry.json()["error"] == "invalid_grant"


async def test_a_replayed_code_is_refused_and_revokes_its_token(
    http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> None:
    """A code works once; replaying it is invalid_grant and its access token stops working."""
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    first = await exchange(http, code, pkce.verifier)
    assert first.status_code == 200
    replay = await exchange(http, code, pkce.verifier)
    assert replay.status_code == 400 and replay.json()["error"] == "invalid_grant"
    bearer = {"Authorization": f"Bearer {first.json()['access_token']}"}
    assert (await http.get(USERINFO, headers=bearer)).status_code == 401


async def test_a_code_of_another_client_is_refused(
    http: httpx.AsyncClient, control: FaceitSandboxClient, players: list[dict[str, Any]]
) -> None:
    """A second client cannot redeem a code issued to the first one."""
    await control.register_oauth_client("other", "other-secret", [REDIRECT_URI])
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    response = await exchange(http, code, pkce.verifier, auth=("other", "other-secret"))
    assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


async def test_an_expired_code_is_refused() -> None:
    """A code redeemed after the configured lifetime is invalid_grant; just before, it works."""
    now = [1_000_000.0]
    async with (
        FaceitSandbox(api_key=API_KEY, clock=lambda: now[0], oauth_code_ttl_s=60) as faceit,
        FaceitSandboxClient(faceit.url) as control,
        httpx.AsyncClient(base_url=faceit.url) as http,
    ):
        await control.register_oauth_client(CLIENT_ID, CLIENT_SECRET, [REDIRECT_URI])
        player = await control.create_player("Alice")
        fresh, stale = Pkce(), Pkce()
        fresh_code = await get_code(http, player["player_id"], fresh)
        stale_code = await get_code(http, player["player_id"], stale)
        now[0] += 59.9
        assert (await exchange(http, fresh_code, fresh.verifier)).status_code == 200
        now[0] += 0.1
        response = await exchange(http, stale_code, stale.verifier)
        assert response.status_code == 400 and response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "authorization", [None, "Bearer not-a-token", "Basic Zm9vOmJhcg==", "Bearer"]
)
async def test_userinfo_refuses_a_bad_token(
    http: httpx.AsyncClient, authorization: str | None
) -> None:
    """Userinfo without a valid Bearer access token answers 401 invalid_token."""
    headers = {"Authorization": authorization} if authorization else {}
    response = await http.get(USERINFO, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_jwks_is_a_key_set(http: httpx.AsyncClient) -> None:
    """JWKS answers a JSON key set."""
    response = await http.get("/auth/v1/oauth/certs")
    assert response.status_code == 200 and response.json() == {"keys": []}


@pytest.mark.parametrize(
    "body",
    [
        {"client_secret": "s", "redirect_uris": [REDIRECT_URI]},
        {"client_id": "c", "redirect_uris": [REDIRECT_URI]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": []},
        {"client_id": "c", "client_secret": "s", "redirect_uris": ["/relative"]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": ["ftp://x.example/cb"]},
        {"client_id": "c", "client_secret": "s", "redirect_uris": [REDIRECT_URI + "#frag"]},
    ],
)
async def test_registering_a_client_validates_it(
    http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    """A client needs an id, a secret and absolute http(s) redirect URIs without fragment."""
    response = await http.post("/_sandbox/oauth/clients", json=body)
    assert response.status_code == 400 and "error" in response.json()


async def test_registering_again_replaces_the_secret(
    http: httpx.AsyncClient, control: FaceitSandboxClient, players: list[dict[str, Any]]
) -> None:
    """Re-registering a client id (a regenerated secret) makes the old secret fail at once."""
    again = await http.post(
        "/_sandbox/oauth/clients",
        json={"client_id": CLIENT_ID, "client_secret": "new", "redirect_uris": [REDIRECT_URI]},
    )
    assert again.status_code == 200 and again.json()["client_id"] == CLIENT_ID
    pkce = Pkce()
    code = await get_code(http, players[0]["player_id"], pkce)
    assert (await exchange(http, code, pkce.verifier)).status_code == 401
    assert (await exchange(http, code, pkce.verifier, auth=(CLIENT_ID, "new"))).status_code == 200


async def bearer_for(http: httpx.AsyncClient, player_id: str) -> dict[str, str]:
    """Run the flow for `player_id`; the Authorization header of its access token."""
    pkce = Pkce()
    response = await exchange(http, await get_code(http, player_id, pkce), pkce.verifier)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Caller:
    """Makes a valid call of one endpoint: a fresh code's exchange, or userinfo with a token."""

    http: httpx.AsyncClient
    endpoint: str
    player_id: str
    bearer: dict[str, str]

    async def __call__(self, timeout: float = 5.0) -> httpx.Response:
        if self.endpoint == "userinfo":
            return await self.http.get(USERINFO, headers=self.bearer, timeout=timeout)
        pkce = Pkce()
        code = await get_code(self.http, self.player_id, pkce)
        return await exchange(self.http, code, pkce.verifier, timeout=timeout)


@pytest.fixture(params=["token", "userinfo"])
async def call(
    request: pytest.FixtureRequest, http: httpx.AsyncClient, players: list[dict[str, Any]]
) -> Caller:
    """A caller of the token or the userinfo endpoint (its token taken before any fault)."""
    player_id = players[0]["player_id"]
    return Caller(http, request.param, player_id, await bearer_for(http, player_id))


async def test_an_injected_status_fails_the_endpoint_once(
    call: Caller, control: FaceitSandboxClient
) -> None:
    """A `status` fault answers that 5xx for `count` calls, then the endpoint works again."""
    await control.add_oauth_fault(call.endpoint, "status", status=503)
    assert [f["endpoint"] for f in await control.oauth_faults()] == [call.endpoint]
    assert (await call()).status_code == 503
    assert await control.oauth_faults() == []
    assert (await call()).status_code == 200


async def test_a_delay_fault_makes_the_endpoint_slower_than_a_client_timeout(
    call: Caller, control: FaceitSandboxClient
) -> None:
    """A `delay` fault holds the answer back, so a consumer's short timeout fires."""
    await control.add_oauth_fault(call.endpoint, "delay", delay_ms=2000)
    with pytest.raises(httpx.ReadTimeout):
        await call(timeout=0.2)


async def test_garbage_and_empty_faults_answer_200_without_the_fields(
    call: Caller, control: FaceitSandboxClient
) -> None:
    """`garbage` answers 200 HTML instead of JSON, `empty` answers 200 `{}`."""
    await control.add_oauth_fault(call.endpoint, "garbage")
    await control.add_oauth_fault(call.endpoint, "empty")
    garbage, empty = await call(), await call()
    assert garbage.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(garbage.text)
    assert (empty.status_code, empty.json()) == (200, {})


async def test_userinfo_without_guid_fault(
    http: httpx.AsyncClient, control: FaceitSandboxClient, players: list[dict[str, Any]]
) -> None:
    """A `no_guid` fault answers a userinfo with the nickname but no `guid`."""
    bearer = await bearer_for(http, players[0]["player_id"])
    await control.add_oauth_fault("userinfo", "no_guid")
    body = (await http.get(USERINFO, headers=bearer)).json()
    assert "guid" not in body and body["nickname"] == "Alice"
    assert "guid" in (await http.get(USERINFO, headers=bearer)).json()


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "discovery", "kind": "status"},
        {"endpoint": "token", "kind": "explode"},
        {"endpoint": "token", "kind": "no_guid"},
        {"endpoint": "token", "kind": "status", "status": 200},
        {"endpoint": "token", "kind": "status", "count": 0},
        {"endpoint": "token", "kind": "delay", "delay_ms": -1},
    ],
)
async def test_bad_faults_are_refused(control: FaceitSandboxClient, fault: dict[str, Any]) -> None:
    """Unknown endpoints or kinds and impossible values are a 400, and nothing is queued."""
    with pytest.raises(SandboxControlError) as raised:
        await control.add_oauth_fault(**fault)
    assert raised.value.status == 400
    assert await control.oauth_faults() == []


async def test_clearing_faults_empties_the_queue(control: FaceitSandboxClient) -> None:
    """DELETE /_sandbox/oauth/faults removes every queued Connect fault."""
    await control.add_oauth_fault("token", "status", count=3)
    await control.clear_oauth_faults()
    assert await control.oauth_faults() == []
