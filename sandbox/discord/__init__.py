"""A local Discord (REST, gateway, control API) that the unmodified py-cord runs against."""

from sandbox.discord.client import DiscordSandboxClient, SandboxError
from sandbox.discord.config import SandboxConfig
from sandbox.discord.pycord_target import point_pycord_at
from sandbox.discord.server import DiscordSandbox

__all__ = [
    "DiscordSandbox",
    "DiscordSandboxClient",
    "SandboxConfig",
    "SandboxError",
    "point_pycord_at",
]
