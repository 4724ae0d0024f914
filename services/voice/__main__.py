"""`python -m services.voice`: the Discord bot and the VoiceService gRPC server in one loop."""

from __future__ import annotations

import asyncio
import logging
import sys

from services.kit.collector import settle_after_startup
from services.kit.database import create_pool, wait_for_database
from services.kit.embedded_postgres import resolve_database_url
from services.kit.grpc_client import GrpcClients
from services.kit.logging import setup_logging
from services.kit.settings import ConfigurationError, load_settings
from services.voice.registry_client import RegistryClient
from services.voice.server import VoiceService
from services.voice.settings import VoiceSettings
from services.voice.startup import StartupError
from services.voice.state import migrate

logger = logging.getLogger("services.voice")


async def run(settings: VoiceSettings) -> None:
    """Database, registry channel, Discord checks, then the service until it stops."""
    dsn = await asyncio.to_thread(resolve_database_url, settings)
    clients = GrpcClients(token=settings.grpc_auth_token, timeout=settings.registry_timeout_s)
    try:
        await wait_for_database(dsn)
        pool = await create_pool(dsn)
        try:
            await migrate(pool)
            registry = RegistryClient(clients.channel(settings.registry_service_addr))
            service = VoiceService(settings, pool, registry)
            try:
                await service.check_discord()
            except StartupError:
                await service.bot.close()
                raise
            await service.run()
        finally:
            await pool.close()
    finally:
        await clients.close()


def main() -> int:
    """Entry point; returns the exit status."""
    try:
        settings = load_settings(VoiceSettings)
    except ConfigurationError as error:
        sys.stderr.write(f"voice: {error.message}\n")
        return 2
    setup_logging(settings.log_level_number, service="voice")
    settle_after_startup()
    try:
        asyncio.run(run(settings))
    except StartupError as error:
        logger.error("cannot start: %s", error)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
