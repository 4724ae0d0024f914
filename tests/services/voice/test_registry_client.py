"""RegistryClient's error mapping when the registry cannot be reached."""

from __future__ import annotations

import socket

import grpc.aio
import pytest

from services.kit.errors import Unavailable
from services.voice.registry_client import RegistryClient


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_registry_down_is_unavailable() -> None:
    """ResolvePlayers against a registry that is not listening raises Unavailable."""
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(Unavailable, match="registry"):
            await RegistryClient(channel).resolve_players(["p1"])
    finally:
        await channel.close()
