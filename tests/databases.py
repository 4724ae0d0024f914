"""Test databases: one Postgres server per test session, one fresh empty database per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import asyncpg

from services.kit.database import with_database
from services.kit.embedded_postgres import EmbeddedPostgres


@contextmanager
def session_server(url: str | None, data_dir: Path) -> Iterator[str]:
    """`url` if given (TEST_DATABASE_URL), else an embedded Postgres in `data_dir` till exit."""
    if url:
        yield url
        return
    server = EmbeddedPostgres(data_dir)
    try:
        yield server.start()
    finally:
        server.stop()


@asynccontextmanager
async def temporary_database(server_url: str) -> AsyncIterator[str]:
    """Create an empty database `test_<random>` on the server, yield its DSN, drop it after."""
    name = f"test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server_url, name)
    finally:
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
