"""The slash commands /register, /unregister and /whoami, and the replies they give."""

import logging
from dataclasses import dataclass

import discord
import discord.ui
import grpc
import grpc.aio
from faceitvoice.v1 import registry_service_pb2 as registry_pb

from services.kit.call_errors import Failure, classify, describe
from services.kit.errors import DomainError
from services.voice.cache import ActiveMatchCache
from services.voice.matches import MatchService
from services.voice.model import MatchRecord
from services.voice.pending_replies import Edit, PendingReplies
from services.voice.registry_client import RegistryClient, faceit_is_down, suggestions
from services.voice.settings import LinkVerification

logger = logging.getLogger(__name__)

FACEIT_UNAVAILABLE_TEXT = "FACEIT cannot be reached right now; please try again in a minute."
SERVICE_UNAVAILABLE_TEXT = "The service is unavailable right now; please try again later."


@dataclass(frozen=True)
class Reply:
    """What the bot answers, always ephemeral."""

    content: str | None = None
    embed: discord.Embed | None = None
    link_url: str | None = None
    """Shown as a link button under the text."""


SIGN_IN_LABEL = "Sign in with FACEIT"


def link_embed(link: registry_pb.PlayerLink, title: str) -> discord.Embed:
    """The FACEIT profile of a link: nickname, level, elo and avatar."""
    profile = link.profile
    embed = discord.Embed(title=title, description=link.faceit_nickname)
    if profile.faceit_url:
        embed.url = profile.faceit_url
    embed.add_field(name="Nickname", value=link.faceit_nickname, inline=True)
    embed.add_field(name="Level", value=str(profile.skill_level or "-"), inline=True)
    embed.add_field(name="Elo", value=str(profile.faceit_elo or "-"), inline=True)
    if profile.avatar_url:
        embed.set_thumbnail(url=profile.avatar_url)
    return embed


def verification_text(link: registry_pb.PlayerLink, verification: LinkVerification) -> str:
    """Whether the link is proved, and when; what an unproved one is worth in this mode."""
    if link.verified:
        return f"Yes: signed in with FACEIT <t:{link.verified_at.seconds}:f>"
    if verification is LinkVerification.FACEIT_OAUTH:
        return "No: registered by nickname only, which gives no channel access; use /register"
    return "No: registered by nickname only"


def explain_link_error(error: grpc.aio.AioRpcError, nickname: str) -> str:
    """A clear message for each way LinkPlayer can fail."""
    code = error.code()
    if code is grpc.StatusCode.NOT_FOUND:
        close = suggestions(error)
        text = f"No FACEIT player is called **{nickname}**."
        if close:
            text += " Did you mean: " + ", ".join(f"**{name}**" for name in close) + "?"
        return text
    if code is grpc.StatusCode.FAILED_PRECONDITION:
        return (
            "Your Discord account is already registered with another FACEIT account; "
            "use /unregister first."
        )
    if code is grpc.StatusCode.ALREADY_EXISTS:
        return f"The FACEIT account **{nickname}** is already registered by another Discord user."
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        return f"That is not a valid FACEIT nickname: {error.details()}"
    if classify(error) is Failure.TRANSIENT:
        return FACEIT_UNAVAILABLE_TEXT if faceit_is_down(error) else SERVICE_UNAVAILABLE_TEXT
    logger.warning("LinkPlayer failed: %s", describe(error))
    return "Registration failed unexpectedly; please try again later."


class PlayerCommands:
    """The logic of the slash commands, apart from py-cord's context."""

    def __init__(
        self,
        registry: RegistryClient,
        matches: MatchService,
        cache: ActiveMatchCache,
        *,
        verification: LinkVerification = LinkVerification.FACEIT_OAUTH,
        pending: PendingReplies | None = None,
    ) -> None:
        self._registry = registry
        self._matches = matches
        self._cache = cache
        self.verification = verification
        self.pending = pending if pending is not None else PendingReplies()

    async def start_link(self, user_id: int, display_name: str, username: str) -> Reply:
        """A one-time link to sign in with FACEIT (faceit_oauth mode)."""
        try:
            started = await self._registry.start_link(user_id, display_name, username)
        except grpc.aio.AioRpcError as error:
            if classify(error) is Failure.TRANSIENT:
                return Reply(content=SERVICE_UNAVAILABLE_TEXT)
            logger.warning("StartLink failed: %s", describe(error))
            return Reply(content="Registration failed unexpectedly; please try again later.")
        expires = started.expires_at.seconds
        return Reply(
            content=(
                "Sign in with FACEIT to prove the account is yours; your match channel opens "
                f"to you once you have. This link is for you alone, works once and expires "
                f"<t:{expires}:R> (at <t:{expires}:T>)."
            ),
            link_url=started.url,
        )

    async def link_changed(self, change: registry_pb.LinkChange) -> None:
        """Apply a link change from the registry: access, moves, and the pending reply."""
        link = change.link
        if change.kind == registry_pb.LinkChange.KIND_UNLINKED:
            await self._matches.player_unlinked(link.faceit_player_id)
            return
        if change.kind != registry_pb.LinkChange.KIND_LINKED:
            return
        updated = await self._matches.player_linked(link.discord_user_id, link.faceit_player_id)
        edit = self.pending.take(link.discord_user_id)
        if edit is None:
            return
        embed = link_embed(link, "FACEIT account linked")
        embed.add_field(
            name="Verified", value=verification_text(link, self.verification), inline=False
        )
        self._add_match_field(embed, link.discord_user_id, updated)
        try:
            await edit(embed)
        except discord.HTTPException as error:
            logger.info(
                "the /register reply of %s could not be edited: %s", link.discord_user_id, error
            )

    def _add_match_field(
        self, embed: discord.Embed, user_id: int, updated: list[MatchRecord]
    ) -> None:
        """The team channel the user was just given, if any."""
        for record in updated:
            seat = self._cache.seat_of(user_id)
            if seat is not None and seat.match_id == record.match_id:
                embed.add_field(name="Your match", value=f"<#{seat.channel_id}>", inline=False)

    async def register(self, user_id: int, nickname: str) -> Reply:
        """Link the user to the FACEIT account; give access to a running match at once."""
        nickname = nickname.strip()
        try:
            response = await self._registry.link_player(user_id, nickname)
        except grpc.aio.AioRpcError as error:
            return Reply(content=explain_link_error(error, nickname))
        link = response.link
        title = "FACEIT account linked" if response.created else "FACEIT account already linked"
        embed = link_embed(link, title)
        try:
            updated = await self._matches.player_linked(user_id, link.faceit_player_id)
        except DomainError as error:
            logger.warning("could not give %s access to their match: %s", user_id, error.message)
        else:
            self._add_match_field(embed, user_id, updated)
        return Reply(embed=embed)

    async def unregister(self, user_id: int) -> Reply:
        """Remove the user's link and their access to a running match's channel."""
        try:
            response = await self._registry.unlink_player(user_id)
        except grpc.aio.AioRpcError as error:
            if error.code() is grpc.StatusCode.NOT_FOUND:
                return Reply(content="You have no registered FACEIT account.")
            if classify(error) is Failure.TRANSIENT:
                return Reply(content=SERVICE_UNAVAILABLE_TEXT)
            logger.warning("UnlinkPlayer failed: %s", describe(error))
            return Reply(content="Unregistering failed unexpectedly; please try again later.")
        try:
            await self._matches.player_unlinked(response.link.faceit_player_id)
        except DomainError as error:
            logger.warning("could not take %s's match access away: %s", user_id, error.message)
        return Reply(
            content=f"Your FACEIT account **{response.link.faceit_nickname}** is unregistered."
        )

    async def whoami(self, user_id: int) -> Reply:
        """The user's link and current match channel."""
        try:
            link = await self._registry.get_link(user_id)
        except grpc.aio.AioRpcError as error:
            if classify(error) is Failure.TRANSIENT:
                return Reply(content=SERVICE_UNAVAILABLE_TEXT)
            logger.warning("GetPlayerLink failed: %s", describe(error))
            return Reply(content="Looking up your account failed unexpectedly; please try again.")
        if link is None:
            return Reply(content="You have no registered FACEIT account; use /register.")
        embed = link_embed(link, "Your FACEIT account")
        embed.add_field(
            name="Verified", value=verification_text(link, self.verification), inline=False
        )
        seat = self._cache.seat_of(user_id)
        embed.add_field(
            name="Your match",
            value=f"<#{seat.channel_id}>" if seat is not None else "none running",
            inline=False,
        )
        return Reply(embed=embed)


async def _respond(ctx: discord.ApplicationContext, reply: Reply) -> None:
    if reply.link_url is not None:
        view = discord.ui.View()
        view.add_item(
            discord.ui.Button(
                label=SIGN_IN_LABEL, url=reply.link_url, style=discord.ButtonStyle.link
            )
        )
        await ctx.respond(content=reply.content, view=view, ephemeral=True)
    elif reply.embed is not None:
        await ctx.respond(content=reply.content, embed=reply.embed, ephemeral=True)
    else:
        await ctx.respond(content=reply.content, ephemeral=True)


def _edit_reply(ctx: discord.ApplicationContext) -> Edit:
    """Replaces the command's reply (text and button) by an embed."""

    async def edit(embed: discord.Embed) -> None:
        await ctx.interaction.edit_original_response(content=None, embed=embed, view=None)

    return edit


def add_commands(bot: discord.Bot, commands: PlayerCommands) -> None:
    """Register the slash commands on `bot` (guild commands through its debug_guilds);
    /register's shape follows the link verification mode."""
    if commands.verification is LinkVerification.FACEIT_OAUTH:

        @bot.slash_command(name="register", description="Link your FACEIT account by signing in")
        async def register_verified(ctx: discord.ApplicationContext) -> None:
            await ctx.defer(ephemeral=True)
            author = ctx.author
            reply = await commands.start_link(author.id, author.display_name, author.name)
            await _respond(ctx, reply)
            if reply.link_url is not None:
                commands.pending.add(author.id, _edit_reply(ctx))

    else:

        @bot.slash_command(name="register", description="Link your FACEIT account to Discord")
        @discord.option("faceit_nickname", str, description="Your FACEIT nickname")
        async def register(ctx: discord.ApplicationContext, faceit_nickname: str) -> None:
            await ctx.defer(ephemeral=True)
            await _respond(ctx, await commands.register(ctx.author.id, faceit_nickname))

    @bot.slash_command(name="unregister", description="Unlink your FACEIT account")
    async def unregister(ctx: discord.ApplicationContext) -> None:
        await ctx.defer(ephemeral=True)
        await _respond(ctx, await commands.unregister(ctx.author.id))

    @bot.slash_command(name="whoami", description="Your FACEIT account and match channel")
    async def whoami(ctx: discord.ApplicationContext) -> None:
        await ctx.defer(ephemeral=True)
        await _respond(ctx, await commands.whoami(ctx.author.id))
