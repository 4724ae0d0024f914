"""The /match slash command group for admins in py-cord: authorisation, the confirmation
buttons of /match close, and ephemeral replies.

Discord offers the group only to members with Manage Channels (`default_member_permissions`),
but a guild's admins may widen that in Server Settings > Integrations. The bot therefore also
checks the member's permissions that come with every interaction: without Manage Channels (or
Administrator) in the channel the command runs in, it refuses.
"""

from __future__ import annotations

import logging

import discord
import discord.ui

from services.voice.admin import AdminCommands

logger = logging.getLogger(__name__)

REQUIRED = discord.Permissions(manage_channels=True)
NOT_ALLOWED_TEXT = "You need the Manage Channels permission to use /match."
CONFIRM_TIMEOUT_S = 60.0
NO_MENTIONS = discord.AllowedMentions.none()


def allowed(interaction: discord.Interaction) -> bool:
    """Whether the member who started the interaction has Manage Channels (or Administrator)
    in its channel, by the permissions Discord sent with it."""
    permissions = interaction.permissions
    return permissions.administrator or permissions.manage_channels


class ConfirmClose(discord.ui.View):
    """Confirm and Cancel buttons for one admin; they expire after `timeout` seconds."""

    def __init__(
        self, admin: AdminCommands, admin_id: int, match_id: str, *, timeout: float
    ) -> None:
        super().__init__(timeout=timeout)
        self._admin = admin
        self._admin_id = admin_id
        self._match_id = match_id

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the admin who ran /match close, still allowed to, may press the buttons."""
        user = interaction.user
        if user is not None and user.id == self._admin_id and allowed(interaction):
            return True
        logger.warning(
            "user %s pressed the close buttons of admin %s",
            user.id if user is not None else None,
            self._admin_id,
        )
        await interaction.response.send_message(
            "Only the admin who ran /match close, with Manage Channels, can answer it.",
            ephemeral=True,
        )
        return False

    @discord.ui.button(
        label="Close the match", style=discord.ButtonStyle.danger, custom_id="match-close:confirm"
    )
    async def confirm(self, button: discord.ui.Button, interaction: discord.Interaction) -> None:
        """Close the match; the question is replaced by the result."""
        self.stop()
        await interaction.response.defer()  # DEFERRED_UPDATE: closing may outlast 3 s
        text = await self._admin.close(self._admin_id, self._match_id)
        await interaction.edit_original_response(content=text, view=None)

    @discord.ui.button(
        label="Cancel", style=discord.ButtonStyle.secondary, custom_id="match-close:cancel"
    )
    async def cancel(self, button: discord.ui.Button, interaction: discord.Interaction) -> None:
        """Leave the match open."""
        self.stop()
        logger.info("admin %s cancelled closing match %s", self._admin_id, self._match_id)
        await interaction.response.edit_message(
            content=f"Cancelled: match **{self._match_id}** stays open.", view=None
        )

    async def on_timeout(self) -> None:
        """Take the buttons away once they expire."""
        message = self.message
        if message is None:
            return
        try:
            await message.edit(
                content=f"Expired: run /match close {self._match_id} again to close it.",
                view=None,
            )
        except discord.HTTPException as error:
            logger.info("the expired close question could not be edited: %s", error)


def add_admin_commands(
    bot: discord.Bot, admin: AdminCommands, *, confirm_timeout_s: float = CONFIRM_TIMEOUT_S
) -> None:
    """Register the /match group (guild commands through the bot's debug_guilds)."""
    group = bot.create_group(
        "match",
        "Admin: the FACEIT match channels",
        default_member_permissions=REQUIRED,
    )

    async def refused(ctx: discord.ApplicationContext) -> bool:
        if allowed(ctx.interaction):
            return False
        logger.warning("user %s without Manage Channels ran /match %s", ctx.author.id, ctx.command)
        await ctx.respond(NOT_ALLOWED_TEXT, ephemeral=True)
        return True

    @group.command(name="list", description="Open matches, their channels and linked players")
    async def list_matches(ctx: discord.ApplicationContext) -> None:
        if await refused(ctx):
            return
        await ctx.defer(ephemeral=True)
        text = await admin.list_open(ctx.author.id)
        await ctx.respond(text, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @group.command(name="close", description="Close a match: players to the lobby, channels gone")
    @discord.option("match_id", str, description="The FACEIT match id")
    async def close(ctx: discord.ApplicationContext, match_id: str) -> None:
        if await refused(ctx):
            return
        await ctx.defer(ephemeral=True)
        check = await admin.check_close(ctx.author.id, match_id)
        if check.match_id is None:
            await ctx.respond(check.text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        view = ConfirmClose(admin, ctx.author.id, check.match_id, timeout=confirm_timeout_s)
        await ctx.respond(check.text, view=view, ephemeral=True, allowed_mentions=NO_MENTIONS)

    @group.command(name="sync", description="Reconcile Discord with the database now")
    async def sync(ctx: discord.ApplicationContext) -> None:
        if await refused(ctx):
            return
        await ctx.defer(ephemeral=True)
        await ctx.respond(await admin.sync(ctx.author.id), ephemeral=True)
