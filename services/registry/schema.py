"""The registry's Postgres schema: its name, its migration files, and applying them."""

from __future__ import annotations

from pathlib import Path

import asyncpg

from services.kit.migrations import apply_migrations

SCHEMA = "registry"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"


async def migrate(target: asyncpg.Pool | asyncpg.Connection) -> list[str]:
    """Apply the registry's pending migrations; the files applied."""
    return await apply_migrations(target, SCHEMA, MIGRATIONS_DIR)
