"""Ordered plain-SQL migrations per schema, applied once each under an advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

logger = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_SCHEMA_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class MigrationError(Exception):
    """The migration files and the database disagree; nothing further was applied."""


@dataclass(frozen=True)
class Migration:
    """One SQL file: `0003_add_index.sql` is version 3 named `add_index`."""

    version: int
    name: str
    sql: str
    checksum: str

    @property
    def file_name(self) -> str:
        """The file this migration was read from."""
        return f"{self.version:04d}_{self.name}.sql"


def read_migrations(directory: Path) -> list[Migration]:
    """The `NNNN_name.sql` files of `directory`, in version order."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_lower_snake.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path}: version {version} is used by two files")
        data = path.read_bytes()
        migrations[version] = Migration(
            version=version,
            name=match.group(2),
            sql=data.decode("utf-8"),
            checksum=hashlib.sha256(data).hexdigest(),
        )
    return [migrations[version] for version in sorted(migrations)]


def advisory_lock_key(schema: str) -> int:
    """A stable signed 64-bit advisory lock key for `schema`'s migrations."""
    digest = hashlib.sha256(f"faceit-voice migrations {schema}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


async def apply_migrations(
    target: asyncpg.Pool | asyncpg.Connection, schema: str, directory: Path
) -> list[str]:
    """Apply the pending migrations of `directory` to `schema`; return the files applied.

    Each file runs in its own transaction with `search_path` set to `schema, public`, and is
    recorded in `<schema>.schema_migrations`. Refuses (MigrationError) when an applied file
    was changed or removed, or when the database is ahead of the files.
    """
    if not _SCHEMA_NAME.match(schema):
        raise MigrationError(f"invalid schema name {schema!r}")
    migrations = read_migrations(directory)
    if isinstance(target, asyncpg.Pool):
        async with target.acquire() as connection:
            return await _apply_locked(connection, schema, migrations)
    return await _apply_locked(target, schema, migrations)


async def _apply_locked(
    connection: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    key = advisory_lock_key(schema)
    await connection.execute("SELECT pg_advisory_lock($1)", key)
    try:
        return await _apply(connection, schema, migrations)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", key)


async def _apply(
    connection: asyncpg.Connection, schema: str, migrations: list[Migration]
) -> list[str]:
    await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    await connection.execute(
        f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
        " version integer PRIMARY KEY,"
        " name text NOT NULL,"
        " checksum text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    rows = await connection.fetch(
        f'SELECT version, name, checksum FROM "{schema}".schema_migrations ORDER BY version'
    )
    _check_history(schema, {row["version"]: row for row in rows}, migrations)
    applied_versions = {row["version"] for row in rows}
    applied: list[str] = []
    for migration in migrations:
        if migration.version in applied_versions:
            continue
        try:
            async with connection.transaction():
                await connection.execute(f'SET LOCAL search_path TO "{schema}", public')
                await connection.execute(migration.sql)
                await connection.execute(
                    f'INSERT INTO "{schema}".schema_migrations (version, name, checksum)'
                    " VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
        except asyncpg.PostgresError as error:
            raise MigrationError(
                f"schema {schema}: {migration.file_name} failed and was rolled back: {error}"
            ) from error
        logger.info("applied migration %s to schema %s", migration.file_name, schema)
        applied.append(migration.file_name)
    if not applied:
        logger.info("schema %s is up to date (%s migrations)", schema, len(migrations))
    return applied


def _check_history(
    schema: str, recorded: dict[int, asyncpg.Record], migrations: list[Migration]
) -> None:
    files = {migration.version: migration for migration in migrations}
    newest_file = max(files, default=0)
    for version, row in sorted(recorded.items()):
        migration = files.get(version)
        if migration is None:
            where = "newer than the files" if version > newest_file else "missing from the files"
            raise MigrationError(
                f"schema {schema}: the database has migration {version:04d}_{row['name']} "
                f"which is {where}; refusing to run against it"
            )
        if migration.checksum != row["checksum"]:
            raise MigrationError(
                f"schema {schema}: {migration.file_name} was changed after it was applied "
                "(checksum differs); add a new migration instead of editing an applied one"
            )
