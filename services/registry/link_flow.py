"""The verified-link flow, step by step: StartLink makes a one-time state; the link page names
the Discord account; continuing binds the state to this browser and goes to FACEIT with PKCE;
the callback consumes the state, exchanges the code, reads userinfo and stores a verified link.

Each refusal is a `LinkFlowError` carrying the HTTP status and the words of its page.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import datetime

from services.kit.faceit_api import FaceitApiClient, FaceitApiError
from services.kit.faceit_models import FaceitPlayer
from services.registry.faceit_connect import (
    ConnectBadAnswer,
    ConnectEndpoints,
    ConnectError,
    ConnectRefused,
    ConnectUnavailable,
    FaceitConnectClient,
    FaceitIdentity,
    Pkce,
    Tokens,
    authorization_url,
)
from services.registry.link_states import LinkState, LinkStateRepository
from services.registry.links import FaceitAccount, account_from_player
from services.registry.metrics import RegistryMetrics
from services.registry.store import AccountTaken, PlayerLinkRepository, VerifiedOutcome

logger = logging.getLogger(__name__)

STATE_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
"""What `secrets.token_urlsafe(32)` makes; anything else is refused before the database."""
BROWSER_COOKIE = "faceitvoice_link"
CALLBACK_PATH = "/link/callback"


START_AGAIN = "Run /register in Discord again to get a new link."


class LinkFlowError(Exception):
    """A refused or failed step: the page's HTTP status, heading, explanation and next step."""

    status = 400
    title = "This link cannot be used"
    next_step = START_AGAIN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnknownLink(LinkFlowError):
    """No such state: never issued, used already, or replaced by a newer /register."""

    status = 404
    title = "This link is not valid"


class ExpiredLink(LinkFlowError):
    """The state expired."""

    status = 410
    title = "This link has expired"


class NotFromLinkPage(LinkFlowError):
    """The continue button was pressed somewhere other than the link page (a cross-site form,
    an old tab): the browser lacks the link page's cookie."""

    status = 403
    title = "Continue from the link page"
    next_step = "Open the link from Discord again and press the button on that page."


class BadCallback(LinkFlowError):
    """The callback came back without what it needs, or with a used or unknown state."""

    status = 400
    title = "The sign-in could not be finished"


class OtherBrowser(LinkFlowError):
    """The callback came back in a browser that did not press continue on the link page."""

    status = 403
    title = "The sign-in was started somewhere else"


class ConsentDenied(LinkFlowError):
    """The user declined at FACEIT."""

    status = 403
    title = "FACEIT sign-in was cancelled"


class CodeRefused(LinkFlowError):
    """FACEIT refused the code (used, expired, or the PKCE verifier does not match)."""

    status = 400
    title = "FACEIT did not confirm the sign-in"


class AccountHeld(LinkFlowError):
    """Another Discord user holds a verified link of this FACEIT account."""

    status = 409
    title = "This FACEIT account is linked to another Discord account"
    next_step = (
        "If that Discord account is also yours, run /unregister there first, then /register "
        "here again. If it is not yours, ask a server admin to remove that link."
    )


class FaceitDown(LinkFlowError):
    """FACEIT could not be reached, failed, or was too slow."""

    status = 503
    title = "FACEIT is not answering"


class FaceitBroken(LinkFlowError):
    """FACEIT answered something unusable."""

    status = 502
    title = "FACEIT answered something we cannot use"


@dataclass(frozen=True)
class Finished:
    """A finished flow: who asked, and the verified link it made."""

    state: LinkState
    outcome: VerifiedOutcome


def new_browser_token() -> str:
    """A random token for the link page's cookie (and its form's hidden copy)."""
    return secrets.token_urlsafe(32)


def browser_hash(token: str) -> str:
    """What is stored of a browser cookie: its SHA-256, so the table alone cannot finish a flow."""
    return hashlib.sha256(token.encode()).hexdigest()


def _connect_failure(error: ConnectError) -> LinkFlowError:
    if isinstance(error, ConnectRefused):
        return CodeRefused(error.message)
    if isinstance(error, ConnectUnavailable):
        return FaceitDown(error.message)
    assert isinstance(error, ConnectBadAnswer)
    return FaceitBroken(error.message)


def _authorization_error(error: str, discord_user_id: int) -> LinkFlowError:
    """The page for an OAuth `error` FACEIT sent back; its text is never shown (anyone can put
    words in a URL), only logged, cut short."""
    logger.info("link flow: FACEIT answered Discord user %s with %r", discord_user_id, error[:40])
    if error == "access_denied":
        return ConsentDenied("you chose not to share your FACEIT account, so nothing was linked")
    if error in ("temporarily_unavailable", "server_error"):
        return FaceitDown("FACEIT could not sign you in just now")
    return BadCallback("FACEIT refused the sign-in request")


class LinkFlow:
    """The steps of a verified link; every dependency is passed in."""

    def __init__(
        self,
        states: LinkStateRepository,
        links: PlayerLinkRepository,
        connect: FaceitConnectClient,
        faceit: FaceitApiClient,
        metrics: RegistryMetrics,
        *,
        public_base_url: str,
        state_ttl_s: float,
        game: str,
    ) -> None:
        self._metrics = metrics
        self._states = states
        self._links = links
        self._connect = connect
        self._faceit = faceit
        self.public_base_url = public_base_url
        self._ttl_s = state_ttl_s
        self._game = game

    @property
    def redirect_uri(self) -> str:
        """The callback URL registered with the OAuth client in FACEIT's App Studio."""
        return f"{self.public_base_url}{CALLBACK_PATH}"

    def page_url(self, state: str) -> str:
        """The public URL of a state's link page."""
        return f"{self.public_base_url}/link/{state}"

    async def authorization_endpoint(self) -> str:
        """FACEIT's authorization endpoint (the link page's form leads there)."""
        return (await self._endpoints()).authorization_endpoint

    async def start(
        self, discord_user_id: int, display_name: str, username: str
    ) -> tuple[str, datetime]:
        """A new one-time link page URL for the user, and when it expires."""
        state = secrets.token_urlsafe(32)
        expires_at = await self._states.create(
            state, discord_user_id, display_name, username, self._ttl_s
        )
        logger.info("link flow started for Discord user %s", discord_user_id)
        self._metrics.links_started.inc()
        return self.page_url(state), expires_at

    async def pending(self, state: str) -> LinkState:
        """The live state behind a link page; UnknownLink or ExpiredLink otherwise."""
        found = await self._states.find(state) if STATE_PATTERN.fullmatch(state) else None
        if found is None:
            raise UnknownLink(
                "this link was never issued, was used already, or a newer /register replaced it"
            )
        if found.expired:
            raise ExpiredLink("links work for a limited time after /register")
        return found

    async def depart(self, state: str, page_token: str, cookie_token: str | None) -> str:
        """Bind the state to this browser and a new PKCE verifier; FACEIT's sign-in URL.

        `page_token` is the form's copy of the cookie the link page set: a form posted from
        anywhere but that page (another site, another browser) does not carry both.
        """
        await self.pending(state)
        if not cookie_token or not secrets.compare_digest(
            page_token.encode(), cookie_token.encode()
        ):
            raise NotFromLinkPage("the button was not pressed on the link page in this browser")
        endpoints = await self._endpoints()
        pkce = Pkce.new()
        if await self._states.depart(state, pkce.verifier, browser_hash(cookie_token)) is None:
            raise ExpiredLink("links work for a limited time after /register")
        return authorization_url(
            endpoints,
            client_id=self._connect.client_id,
            state=state,
            challenge=pkce.challenge,
            redirect_uri=self.redirect_uri,
        )

    async def finish(
        self, state: str, code: str, error: str, browser_token: str | None
    ) -> Finished:
        """Consume the state, then code -> token -> userinfo -> a verified link."""
        taken = await self._consume(state, browser_token)
        if error:
            raise _authorization_error(error, taken.discord_user_id)
        if not code:
            raise BadCallback("FACEIT sent the browser back without a code")
        assert taken.code_verifier is not None  # finish() only consumes departed states
        try:
            tokens = await self._connect.exchange_code(code, taken.code_verifier, self.redirect_uri)
            identity, player = await self._identity(tokens)
        except ConnectError as failure:
            logger.warning(
                "link flow for Discord user %s failed: %s", taken.discord_user_id, failure.message
            )
            raise _connect_failure(failure) from None
        account = self._account(identity, player)
        try:
            outcome = await self._links.link_verified(taken.discord_user_id, account)
        except AccountTaken:
            logger.warning(
                "link flow: FACEIT %s is linked verified to another Discord user than %s",
                account.player_id,
                taken.discord_user_id,
            )
            raise AccountHeld(
                f"FACEIT account {account.nickname} is already linked, verified, to another "
                "Discord account"
            ) from None
        logger.info(
            "link flow: Discord user %s verified FACEIT %s (%s), replacing %s other link(s)",
            taken.discord_user_id,
            account.nickname,
            account.player_id,
            len(outcome.removed),
        )
        self._metrics.links_verified.inc()
        return Finished(taken, outcome)

    async def _consume(self, state: str, browser_token: str | None) -> LinkState:
        if not STATE_PATTERN.fullmatch(state):
            raise BadCallback("the link's state is missing or malformed")
        token_hash = browser_hash(browser_token) if browser_token else ""
        taken = await self._states.finish(state, token_hash)
        if taken is not None:
            return taken
        found = await self._states.find(state)
        if found is None:
            raise BadCallback("this sign-in was finished already, or its link was replaced")
        if found.expired:
            raise ExpiredLink("links work for a limited time after /register")
        if found.browser_hash is None or found.browser_hash != token_hash:
            raise OtherBrowser(
                "the FACEIT sign-in must be finished in the browser that opened the link page"
            )
        # Live, departed and this browser's, yet not consumed: another request consumed it
        # between the two statements.
        raise BadCallback("this sign-in was finished already")

    async def _endpoints(self) -> ConnectEndpoints:
        try:
            return await self._connect.endpoints()
        except ConnectError as error:
            raise _connect_failure(error) from None

    async def _identity(self, tokens: Tokens) -> tuple[FaceitIdentity, FaceitPlayer | None]:
        """Who signed in (userinfo), and their Data API profile (None when it failed).

        The profile of the player the id_token names is read while userinfo answers, and kept
        only when userinfo names the same player.
        """
        early = asyncio.create_task(self._profile(tokens.guid_hint)) if tokens.guid_hint else None
        try:
            identity = await self._connect.userinfo(tokens.access_token)
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        if early is not None and tokens.guid_hint == identity.guid:
            return identity, await early
        if early is not None:
            early.cancel()
        return identity, await self._profile(identity.guid)

    async def _profile(self, guid: str) -> FaceitPlayer | None:
        """The player's Data API profile; None (logged) when the Data API fails."""
        try:
            return await self._faceit.get_player(guid)
        except FaceitApiError as error:
            logger.warning("no Data API profile for FACEIT %s: %s", guid, error.message)
            return None

    def _account(self, identity: FaceitIdentity, player: FaceitPlayer | None) -> FaceitAccount:
        """The account with its Data API profile; userinfo alone without one."""
        if player is None or player.player_id != identity.guid:
            return FaceitAccount(
                player_id=identity.guid, nickname=identity.nickname, avatar_url=identity.picture
            )
        account = account_from_player(player, self._game)
        return replace(
            account,
            nickname=identity.nickname,
            avatar_url=account.avatar_url or identity.picture,
        )
