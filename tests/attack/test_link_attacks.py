"""Attacks on the verified-link flow: forged, expired, replayed and stolen states, replayed
codes, a tampered PKCE verifier, declined consent, a link or sign-in URL sent to a victim,
open redirects and framing. Real registry HTTP and gRPC, the FACEIT Connect sandbox over HTTP
and Postgres; each test checks the page a person sees and that no link was made or changed.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import grpc
import grpc.aio
import pytest
from faceitvoice.v1 import registry_service_pb2 as pb

from sandbox.faceit.server import FaceitSandbox
from services.registry.server import migrate
from tests.services.registry.conftest import (
    CLIENT_ID,
    LinkingRegistry,
    linking_registry,
    register_oauth_client,
)
from tests.services.registry.link_browser import Browser, Page, browser

ALICE, MALLORY = 1001, 6666


@pytest.fixture
async def linking(fresh_database: str) -> AsyncIterator[LinkingRegistry]:
    """A faceit_oauth registry on a migrated database, its OAuth client registered in a fresh
    FACEIT sandbox."""
    connection = await asyncpg.connect(fresh_database)
    try:
        await migrate(connection)
    finally:
        await connection.close()
    async with (
        FaceitSandbox(api_key="attack-key") as sandbox,
        linking_registry(fresh_database, sandbox) as running,
    ):
        register_oauth_client(sandbox, running.public_base_url)
        yield running


async def link_of(linking: LinkingRegistry, discord_user_id: int) -> pb.PlayerLink | None:
    """The user's link, or None."""
    request = pb.GetPlayerLinkRequest(discord_user_id=discord_user_id)
    try:
        response: pb.GetPlayerLinkResponse = await linking.stub.GetPlayerLink(request)
    except grpc.aio.AioRpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
        return None
    return response.link


async def depart(linking: LinkingRegistry, user: Browser, discord_user_id: int, name: str) -> str:
    """StartLink, open the page, press continue: FACEIT's sign-in URL."""
    started = await linking.start_link(discord_user_id, name)
    page = await user.open(started.url)
    assert page.status == 200, page.html
    departed = await user.press_continue(started.url, page)
    assert departed.status_code == 302, departed.text
    location: str = departed.headers["location"]
    return location


async def signed_in(linking: LinkingRegistry, user: Browser, player_id: str) -> str:
    """Alice's flow in `user`'s browser up to FACEIT's redirect back: the callback URL."""
    return await user.sign_in(await depart(linking, user, ALICE, "Alice"), player_id)


def assert_refused(page: Page, status: int, heading: str) -> None:
    """A refusal page: its status, its heading, and how to start again."""
    assert page.status == status, page.html
    assert page.heading == heading
    assert "/register" in page.html or "/unregister" in page.html


async def test_a_forged_state_is_refused_on_every_step(linking: LinkingRegistry) -> None:
    """A state never issued (well-formed or not) opens no page, departs nowhere, ends nothing."""
    player = linking.sandbox.world.add_player("victim")
    forged = secrets.token_urlsafe(32)
    async with browser() as mallory:
        for state in (forged, "x", "%3Cscript%3E", "A" * 5000):
            page = await mallory.open(f"{linking.http_url}/link/{state}")
            assert_refused(page, 404, "This link is not valid")
            posted = await mallory.http.post(f"{linking.http_url}/link/{state}", data={})
            assert posted.status_code == 404
        await depart(linking, mallory, MALLORY, "Mallory")  # a real code needs a real trip
        authorize = await depart(linking, mallory, MALLORY, "Mallory")
        callback = await mallory.sign_in(authorize, player.player_id)
        query = parse_qs(urlsplit(callback).query)
        forged_callback = f"{linking.http_url}/link/callback?code={query['code'][0]}&state={forged}"
        finished = await mallory.open(forged_callback)

    assert_refused(finished, 400, "The sign-in could not be finished")
    assert await link_of(linking, MALLORY) is None


async def test_an_expired_state_is_refused(linking: LinkingRegistry) -> None:
    """Past LINK_STATE_TTL_S the link page and the callback answer 410 and nothing is linked."""
    player = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        callback = await signed_in(linking, alice, player.player_id)
        state = parse_qs(urlsplit(callback).query)["state"][0]
        await linking.pool.execute(
            "UPDATE registry.link_states SET expires_at = clock_timestamp() - interval '1 second'"
        )
        page = await alice.open(f"{linking.public_base_url}/link/{state}")
        finished = await alice.open(callback)

    assert_refused(page, 410, "This link has expired")
    assert_refused(finished, 410, "This link has expired")
    assert await link_of(linking, ALICE) is None


async def test_a_replayed_callback_changes_nothing(linking: LinkingRegistry) -> None:
    """The callback works once: replaying it (same state, same code) is refused, link unchanged."""
    player = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        callback = await signed_in(linking, alice, player.player_id)
        first = await alice.open(callback)
        before = await link_of(linking, ALICE)
        replayed = await alice.open(callback)

    assert first.status == 200
    assert_refused(replayed, 400, "The sign-in could not be finished")
    assert await link_of(linking, ALICE) == before


async def test_a_replayed_code_with_a_fresh_state_is_refused_by_faceit(
    linking: LinkingRegistry,
) -> None:
    """A used code replayed under a new state is refused (one-time codes, PKCE): 400, no change."""
    player = linking.sandbox.world.add_player("alice_fc")
    other = linking.sandbox.world.add_player("someone_else")
    async with browser() as alice:
        authorize = await depart(linking, alice, ALICE, "Alice")
        used = await alice.sign_in(authorize, player.player_id)
        assert (await alice.open(used)).status == 200
        fresh = await depart(linking, alice, ALICE, "Alice")
        fresh_state = parse_qs(urlsplit(fresh).query)["state"][0]
        code = parse_qs(urlsplit(used).query)["code"][0]
        page = await alice.open(
            f"{linking.public_base_url}/link/callback?code={code}&state={fresh_state}"
        )

    assert_refused(page, 400, "FACEIT did not confirm the sign-in")
    link = await link_of(linking, ALICE)
    assert link is not None and link.faceit_player_id == player.player_id != other.player_id


async def test_another_browser_can_neither_finish_nor_burn_a_state(
    linking: LinkingRegistry,
) -> None:
    """Alice's callback opened in Mallory's browser is 403; Alice then finishes normally."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice, browser() as mallory:
        callback = await signed_in(linking, alice, alice_fc.player_id)
        stolen = await mallory.open(callback)
        assert await link_of(linking, ALICE) is None
        finished = await alice.open(callback)

    assert_refused(stolen, 403, "The sign-in was started somewhere else")
    assert finished.status == 200, finished.html
    link = await link_of(linking, ALICE)
    assert link is not None and link.verified


async def test_a_continue_form_posted_from_elsewhere_is_refused(linking: LinkingRegistry) -> None:
    """A cross-site auto-submitted continue form (no link page cookie) never reaches FACEIT."""
    started = await linking.start_link(MALLORY, "Mallory")
    async with browser() as victim:
        forged = await victim.http.post(started.url, data={"page_token": "guessed"})
        page = await victim.open(started.url)
        wrong_token = await victim.http.post(started.url, data={"page_token": "guessed"})
        not_ascii = await victim.http.post(started.url, data={"page_token": "gu\u00e9ss\u00e9d"})

    assert not_ascii.status_code == 403
    assert forged.status_code == 403
    assert "location" not in forged.headers
    assert page.status == 200
    assert wrong_token.status_code == 403
    assert "location" not in wrong_token.headers


async def test_a_sign_in_url_sent_to_a_victim_does_not_link_her(linking: LinkingRegistry) -> None:
    """Mallory departs, sends FACEIT's sign-in URL (skipping the page naming her) to a victim:
    the victim's callback is refused and Mallory gets no link."""
    victim_fc = linking.sandbox.world.add_player("victim_fc")
    async with browser() as mallory, browser() as victim:
        authorize = await depart(linking, mallory, MALLORY, "Mallory")
        callback = await victim.sign_in(authorize, victim_fc.player_id)
        page = await victim.open(callback)

    assert_refused(page, 403, "The sign-in was started somewhere else")
    assert await link_of(linking, MALLORY) is None


async def test_a_link_sent_to_a_victim_names_the_discord_account_before_and_after(
    linking: LinkingRegistry,
) -> None:
    """Mallory's link opened by a victim names Mallory before FACEIT, and the result page names
    Mallory's Discord account and the victim's FACEIT account, with what to do if wrong."""
    victim_fc = linking.sandbox.world.add_player("victim_fc")
    started = await linking.start_link(MALLORY, "Mallory")
    async with browser() as victim:
        page = await victim.open(started.url)
        departed = await victim.press_continue(started.url, page)
        callback = await victim.sign_in(departed.headers["location"], victim_fc.player_id)
        result = await victim.open(callback)

    assert "Discord account <strong>Mallory</strong> (@mallory)" in page.html
    assert "is not your Discord account, close this page" in page.html
    assert "Continue to FACEIT as Mallory" in page.html
    assert result.status == 200
    assert "<strong>Mallory</strong> (@mallory)" in result.html
    assert "<strong>victim_fc</strong>" in result.html
    assert "ask a server admin to remove this link" in result.html


async def test_discord_names_are_escaped_on_the_pages(linking: LinkingRegistry) -> None:
    """A display name with markup is shown as text, never as HTML."""
    name = '<script>alert(1)</script>"><img src=x>'
    started = await linking.start_link(MALLORY, name)
    async with browser() as victim:
        page = await victim.open(started.url)

    assert page.status == 200
    assert "<script>" not in page.html and "<img" not in page.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&quot;&gt;&lt;img src=x&gt;" in page.html


async def test_declined_consent_links_nothing_and_a_new_link_works(
    linking: LinkingRegistry,
) -> None:
    """Deny at FACEIT: a 403 page saying so and how to start again; a fresh /register works."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        authorize = await depart(linking, alice, ALICE, "Alice")
        callback = await alice.sign_in(authorize, alice_fc.player_id, decision="deny")
        assert "error=access_denied" in callback
        declined = await alice.open(callback)
        assert await link_of(linking, ALICE) is None
        again = await alice.link((await linking.start_link(ALICE, "Alice")).url, alice_fc.player_id)

    assert_refused(declined, 403, "FACEIT sign-in was cancelled")
    assert again.status == 200


@pytest.mark.parametrize(
    ("error", "status", "heading"),
    [
        ("temporarily_unavailable", 503, "FACEIT is not answering"),
        ("server_error", 503, "FACEIT is not answering"),
        ("Call+0800+to+restore+your+account", 400, "The sign-in could not be finished"),
    ],
)
async def test_other_errors_from_faceit_are_explained_without_echoing_them(
    linking: LinkingRegistry, error: str, status: int, heading: str
) -> None:
    """An OAuth error other than a refusal answers 503 (FACEIT's trouble) or 400, and the page
    never repeats the error text (a link could carry any words to show on our page)."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        callback = await signed_in(linking, alice, alice_fc.player_id)
        state = parse_qs(urlsplit(callback).query)["state"][0]
        page = await alice.open(
            f"{linking.public_base_url}/link/callback?state={state}&error={error}"
        )

    assert_refused(page, status, heading)
    assert "0800" not in page.html and "_" not in page.heading
    assert await link_of(linking, ALICE) is None


async def test_a_tampered_pkce_verifier_is_refused(linking: LinkingRegistry) -> None:
    """With the stored PKCE verifier changed, FACEIT refuses the code: 400, nothing linked."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        callback = await signed_in(linking, alice, alice_fc.player_id)
        await linking.pool.execute(
            "UPDATE registry.link_states SET code_verifier = $1", secrets.token_urlsafe(32)
        )
        page = await alice.open(callback)

    assert_refused(page, 400, "FACEIT did not confirm the sign-in")
    assert await link_of(linking, ALICE) is None


DOWN, GARBLED = "FACEIT is not answering", "FACEIT answered something we cannot use"


@pytest.mark.parametrize(
    ("endpoint", "kind", "fault_status", "delay_ms", "status", "heading"),
    [
        ("token", "status", 503, 0, 503, DOWN),
        ("token", "delay", 503, 4000, 503, DOWN),
        ("token", "garbage", 503, 0, 502, GARBLED),
        ("token", "empty", 503, 0, 502, GARBLED),
        ("userinfo", "status", 500, 0, 503, DOWN),
        ("userinfo", "delay", 503, 4000, 503, DOWN),
        ("userinfo", "garbage", 503, 0, 502, GARBLED),
        ("userinfo", "no_guid", 503, 0, 502, GARBLED),
    ],
)
async def test_faceit_failures_answer_a_clear_page_and_a_new_link_works(
    linking: LinkingRegistry,
    endpoint: str,
    kind: str,
    fault_status: int,
    delay_ms: float,
    status: int,
    heading: str,
) -> None:
    """FACEIT down, slow (past the 2 s timeout) or answering garbage or no guid: a 502/503 page
    that says so and how to start again, nothing linked; a fresh /register then links."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    linking.sandbox.connect.faults.add(endpoint, kind, status=fault_status, delay_ms=delay_ms)
    async with browser() as alice:
        authorize = await depart(linking, alice, ALICE, "Alice")
        failed = await alice.open(await alice.sign_in(authorize, alice_fc.player_id))
        assert await link_of(linking, ALICE) is None
        again = await alice.link((await linking.start_link(ALICE, "Alice")).url, alice_fc.player_id)

    assert_refused(failed, status, heading)
    assert again.status == 200, again.html
    link = await link_of(linking, ALICE)
    assert link is not None and link.verified


async def test_no_request_chooses_where_the_browser_is_sent(linking: LinkingRegistry) -> None:
    """The only redirect goes to FACEIT's authorization endpoint with the configured
    redirect_uri, whatever the request adds (next=, redirect_uri=, a foreign Host)."""
    started = await linking.start_link(ALICE, "Alice")
    evil = "https://evil.example"
    async with browser() as alice:
        page = await alice.open(f"{started.url}?next={evil}&redirect_uri={evil}")
        departed = await alice.http.post(
            f"{started.url}?next={evil}&redirect_uri={evil}",
            data={"page_token": page.hidden("page_token"), "redirect_uri": evil, "next": evil},
            headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"},
        )
        callback = await alice.open(
            f"{linking.http_url}/link/callback?state=x&code=y&next={evil}&redirect_uri={evil}"
        )

    assert page.status == 200 and evil not in page.html
    location = urlsplit(departed.headers["location"])
    assert f"{location.scheme}://{location.netloc}" == linking.sandbox.url
    query = parse_qs(location.query)
    assert query["redirect_uri"] == [f"{linking.public_base_url}/link/callback"]
    assert query["client_id"] == [CLIENT_ID]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["openid profile"]
    assert evil not in departed.headers["location"]
    assert callback.status == 400 and "location" not in callback.headers


async def test_every_answer_forbids_framing_caching_sniffing_and_referrers(
    linking: LinkingRegistry,
) -> None:
    """Link, result, refusal, not-found and probe answers all carry the security headers; the
    link page's form may lead only here or to FACEIT's sign-in origin."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    started = await linking.start_link(ALICE, "Alice")
    async with browser() as alice:
        answers = {
            "link page": await alice.http.get(started.url),
            "refusal": await alice.http.get(f"{linking.http_url}/link/callback?state=x"),
            "not found": await alice.http.get(f"{linking.http_url}/nothing-here"),
            "wrong method": await alice.http.delete(started.url),
            "healthz": await alice.http.get(f"{linking.http_url}/healthz"),
        }
        page = await alice.open(started.url)
        answers["continue"] = await alice.press_continue(started.url, page)
        authorize = answers["continue"].headers["location"]
        answers["result"] = await alice.http.get(await alice.sign_in(authorize, alice_fc.player_id))

    for name, answer in answers.items():
        headers = answer.headers
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp, name
        assert "frame-ancestors 'none'" in csp, name
        assert "style-src 'sha256-" in csp, name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert headers["cache-control"] == "no-store", name
        assert headers["x-content-type-options"] == "nosniff", name
    link_csp = answers["link page"].headers["content-security-policy"]
    assert f"form-action 'self' {linking.sandbox.url};" in link_csp
    assert "form-action 'self';" in answers["result"].headers["content-security-policy"]
    assert answers["result"].status_code == 200
    cookie = answers["link page"].headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/link" in cookie


async def test_no_registry_log_line_holds_a_state_or_a_code(
    linking: LinkingRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    """A finished flow and a refused replay log neither the state nor FACEIT's code (either
    would let a log reader finish or hijack a live flow)."""
    caplog.set_level("DEBUG", logger="services")
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    async with browser() as alice:
        callback = await signed_in(linking, alice, alice_fc.player_id)
        assert (await alice.open(callback)).status == 200
        assert (await alice.open(callback)).status == 400
        query = parse_qs(urlsplit(callback).query)
        used_page = f"{linking.public_base_url}/link/{query['state'][0]}"
        assert (await alice.open(used_page)).status == 404
    secrets_seen = (query["state"][0], query["code"][0])

    lines = [r.getMessage() for r in caplog.records if r.name.startswith("services.")]
    assert any("verified FACEIT alice_fc" in line for line in lines)
    assert not [line for line in lines if any(secret in line for secret in secrets_seen)]


async def test_faceit_unreachable_before_sign_in_answers_503(linking: LinkingRegistry) -> None:
    """With FACEIT's discovery document unreachable the link page answers 503 saying so, and
    the link still works once FACEIT is back."""
    alice_fc = linking.sandbox.world.add_player("alice_fc")
    started = await linking.start_link(ALICE, "Alice")
    address = urlsplit(linking.sandbox.url)
    await linking.sandbox.stop()
    async with browser() as alice:
        down = await alice.open(started.url)
        await linking.sandbox.start(address.hostname or "", address.port or 0)
        again = await alice.link(started.url, alice_fc.player_id)

    assert_refused(down, 503, "FACEIT is not answering")
    assert again.status == 200, again.html


FORGED_TRIES = 300


async def test_guessing_states_finds_nothing(linking: LinkingRegistry) -> None:
    """300 random well-formed states against the link page, the continue form and the callback,
    beside a live one, all answer 4xx and leave the live state untouched (a state has 256
    random bits)."""
    started = await linking.start_link(ALICE, "Alice")
    statuses: set[int] = set()
    async with browser() as mallory:
        for _ in range(FORGED_TRIES):
            state = secrets.token_urlsafe(32)
            statuses.add((await mallory.open(f"{linking.http_url}/link/{state}")).status)
            posted = await mallory.http.post(f"{linking.http_url}/link/{state}", data={})
            statuses.add(posted.status_code)
            callback = f"{linking.http_url}/link/callback?state={state}&code=c"
            statuses.add((await mallory.open(callback)).status)
        live = await mallory.open(started.url)

    assert statuses == {400, 404}
    assert live.status == 200
    assert await linking.pool.fetchval("SELECT count(*) FROM registry.link_states") == 1


async def test_a_failure_inside_the_registry_still_answers_with_the_headers(
    linking: LinkingRegistry,
) -> None:
    """With the database gone, the link page is a 5xx page carrying every security header."""
    started = await linking.start_link(ALICE, "Alice")
    await linking.pool.close()
    async with browser() as alice:
        page = await alice.open(started.url)

    assert page.status >= 500
    assert "/register" in page.html
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
