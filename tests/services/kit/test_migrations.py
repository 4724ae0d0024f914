"""Tests of the plain-SQL migration runner against a real Postgres."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from services.kit.database import create_pool
from services.kit.migrations import MigrationError, apply_migrations, read_migrations


def _write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, sql in files.items():
        (directory / name).write_text(sql)
    return directory


FIRST = "CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL);"
SECOND = "ALTER TABLE items ADD COLUMN note text; INSERT INTO items VALUES (1, 'one', 'n');"


async def test_migrations_apply_in_order_and_are_recorded(
    fresh_database: str, tmp_path: Path
) -> None:
    """Files apply in version order into the schema and each is recorded once."""
    directory = _write(tmp_path / "m", {"0002_note.sql": SECOND, "0001_items.sql": FIRST})
    connection = await asyncpg.connect(fresh_database)
    try:
        applied = await apply_migrations(connection, "shop", directory)
        rows = await connection.fetch(
            "SELECT version, name, applied_at FROM shop.schema_migrations ORDER BY version"
        )
        item = await connection.fetchrow("SELECT id, name, note FROM shop.items")
    finally:
        await connection.close()
    assert applied == ["0001_items.sql", "0002_note.sql"]
    assert [(row["version"], row["name"]) for row in rows] == [(1, "items"), (2, "note")]
    assert all(row["applied_at"] is not None for row in rows)
    assert tuple(item) == (1, "one", "n")


async def test_migrations_are_idempotent_and_pick_up_new_files(
    fresh_database: str, tmp_path: Path
) -> None:
    """A second run applies nothing; a new file added later is applied alone."""
    directory = _write(tmp_path / "m", {"0001_items.sql": FIRST})
    pool = await create_pool(fresh_database, min_size=1, max_size=2)
    try:
        assert await apply_migrations(pool, "shop", directory) == ["0001_items.sql"]
        assert await apply_migrations(pool, "shop", directory) == []
        _write(directory, {"0002_note.sql": SECOND})
        assert await apply_migrations(pool, "shop", directory) == ["0002_note.sql"]
    finally:
        await pool.close()


async def test_changed_applied_file_is_refused(fresh_database: str, tmp_path: Path) -> None:
    """Editing a file that was already applied makes the runner refuse, naming the file."""
    directory = _write(tmp_path / "m", {"0001_items.sql": FIRST})
    connection = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(connection, "shop", directory)
        _write(directory, {"0001_items.sql": FIRST + " -- edited", "0002_note.sql": SECOND})
        with pytest.raises(MigrationError, match=r"0001_items\.sql was changed"):
            await apply_migrations(connection, "shop", directory)
        note_exists = await connection.fetchval(
            "SELECT count(*) FROM information_schema.columns"
            " WHERE table_schema = 'shop' AND column_name = 'note'"
        )
    finally:
        await connection.close()
    assert note_exists == 0


async def test_database_newer_than_files_is_refused(fresh_database: str, tmp_path: Path) -> None:
    """A database holding a migration the files do not have is refused as newer."""
    directory = _write(tmp_path / "m", {"0001_items.sql": FIRST, "0002_note.sql": SECOND})
    connection = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(connection, "shop", directory)
        (directory / "0002_note.sql").unlink()
        with pytest.raises(MigrationError, match="0002_note which is newer than the files"):
            await apply_migrations(connection, "shop", directory)
    finally:
        await connection.close()


async def test_failing_file_rolls_back_and_is_not_recorded(
    fresh_database: str, tmp_path: Path
) -> None:
    """A file that fails leaves none of its statements behind and is not recorded."""
    broken = "CREATE TABLE half (id int); SELECT no_such_function();"
    directory = _write(tmp_path / "m", {"0001_items.sql": FIRST, "0002_broken.sql": broken})
    connection = await asyncpg.connect(fresh_database)
    try:
        with pytest.raises(MigrationError, match=r"0002_broken\.sql failed"):
            await apply_migrations(connection, "shop", directory)
        versions = await connection.fetch("SELECT version FROM shop.schema_migrations")
        half = await connection.fetchval("SELECT to_regclass('shop.half')")
    finally:
        await connection.close()
    assert [row["version"] for row in versions] == [1]
    assert half is None


async def test_concurrent_appliers_serialize_on_the_advisory_lock(
    fresh_database: str, tmp_path: Path
) -> None:
    """Several starters migrating the same schema at once apply each file exactly once."""
    slow = "SELECT pg_sleep(0.3); CREATE TABLE items (id bigint PRIMARY KEY);"
    more = "CREATE TABLE more (id int);"
    directory = _write(tmp_path / "m", {"0001_items.sql": slow, "0002_more.sql": more})
    connections = [await asyncpg.connect(fresh_database) for _ in range(4)]
    try:
        results = await asyncio.gather(
            *(apply_migrations(connection, "shop", directory) for connection in connections)
        )
        count = await connections[0].fetchval("SELECT count(*) FROM shop.schema_migrations")
    finally:
        for connection in connections:
            await connection.close()
    assert sorted(results, key=len) == [[], [], [], ["0001_items.sql", "0002_more.sql"]]
    assert count == 2


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    """A .sql file that does not follow NNNN_name.sql is reported instead of skipped."""
    directory = _write(tmp_path / "m", {"0001_ok.sql": FIRST, "2_bad.sql": FIRST})
    with pytest.raises(MigrationError, match=r"2_bad\.sql"):
        read_migrations(directory)


async def test_invalid_schema_name_is_refused(fresh_database: str, tmp_path: Path) -> None:
    """Schema names that would need quoting are refused before touching the database."""
    connection = await asyncpg.connect(fresh_database)
    try:
        with pytest.raises(MigrationError, match="invalid schema name"):
            await apply_migrations(connection, 'x"; DROP', _write(tmp_path / "m", {}))
    finally:
        await connection.close()
