"""The grpcurl binary against a running registry: reflection, token, JSON calls."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from tests.services.registry.conftest import TOKEN, Registry

GRPCURL = Path(sys.executable).parent / "grpcurl"
SERVICE = "faceitvoice.v1.RegistryService"


async def grpcurl(
    registry: Registry, *command: str, flags: tuple[str, ...] = ()
) -> tuple[int, str, str]:
    """Run `grpcurl -plaintext FLAGS ADDRESS COMMAND...`; (exit code, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        str(GRPCURL),
        "-plaintext",
        *flags,
        f"127.0.0.1:{registry.server.port}",
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


async def test_grpcurl_lists_the_services_through_reflection(registry: Registry) -> None:
    """`grpcurl list` (no token needed) shows the registry, health and reflection."""
    code, out, err = await grpcurl(registry, "list")

    assert code == 0, err
    services = out.split()
    assert SERVICE in services
    assert "grpc.health.v1.Health" in services


async def test_grpcurl_describes_every_rpc(registry: Registry) -> None:
    """`grpcurl describe` shows the five RPCs of the contract."""
    code, out, err = await grpcurl(registry, "describe", SERVICE)

    assert code == 0, err
    for rpc in ("LinkPlayer", "UnlinkPlayer", "GetPlayerLink", "ResolvePlayers", "ListPlayerLinks"):
        assert f"rpc {rpc} (" in out


async def test_grpcurl_links_and_resolves_with_the_token(registry: Registry) -> None:
    """LinkPlayer then ResolvePlayers with `authorization: Bearer T` answer JSON."""
    made = registry.sandbox.world.add_player("s1mple", skill_level=9)
    auth = f"authorization: Bearer {TOKEN}"
    link_body = json.dumps({"discord_user_id": "80351110224678912", "faceit_nickname": "s1mple"})
    resolve_body = json.dumps({"faceit_player_ids": [made.player_id, "unknown"]})

    code, linked, err = await grpcurl(
        registry, f"{SERVICE}/LinkPlayer", flags=("-H", auth, "-d", link_body)
    )
    assert code == 0, err
    code, resolved, err = await grpcurl(
        registry, f"{SERVICE}/ResolvePlayers", flags=("-H", auth, "-d", resolve_body)
    )
    assert code == 0, err

    link = json.loads(linked)
    assert link["created"] is True
    assert link["link"]["faceit_player_id"] == made.player_id
    assert link["link"]["profile"]["skill_level"] == 9
    links = json.loads(resolved)["links"]
    assert [entry["discord_user_id"] for entry in links] == ["80351110224678912"]


async def test_grpcurl_without_the_token_is_unauthenticated(registry: Registry) -> None:
    """A call without the bearer token fails with Unauthenticated."""
    body = json.dumps({"faceit_player_ids": ["x"]})

    code, _out, err = await grpcurl(registry, f"{SERVICE}/ResolvePlayers", flags=("-d", body))

    assert code != 0
    assert "Unauthenticated" in err
