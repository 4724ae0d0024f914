"""Tests of the embedded Postgres: start, reuse, stop, concurrent starts, long paths, the extra."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from services.kit.embedded_postgres import (
    EmbeddedPostgres,
    resolve_database_url,
    stop_embedded_postgres,
)
from services.kit.settings import ServiceSettings, load_settings

REPO = Path(__file__).resolve().parents[3]
SETTING_PREFIXES = ("DATABASE_", "DISCORD_", "FACEIT_", "GRPC_", "INGEST_", "VOICE_", "REGISTRY_")


@pytest.fixture
def private_dir() -> Iterator[Path]:
    """A temp dir outside pytest's basetemp, which concurrent pytest runs may prune."""
    with tempfile.TemporaryDirectory(prefix="faceit-voice-kit-") as path:
        yield Path(path)


@pytest.fixture
def embedded(private_dir: Path) -> Iterator[EmbeddedPostgres]:
    """An embedded Postgres in a private temp dir, stopped afterwards."""
    server = EmbeddedPostgres(private_dir / "data")
    try:
        yield server
    finally:
        server.stop()


async def _query(dsn: str, sql: str) -> object:
    connection = await asyncpg.connect(dsn)
    try:
        return await connection.fetchval(sql)
    finally:
        await connection.close()


async def test_start_then_second_start_reuses_the_running_server(
    embedded: EmbeddedPostgres,
) -> None:
    """A second start finds the running server: same DSN, same postmaster, quickly."""
    dsn = embedded.start()
    first_start = await _query(dsn, "SELECT pg_postmaster_start_time()")
    started = time.monotonic()
    again = EmbeddedPostgres(embedded.data_dir).start()
    assert time.monotonic() - started < 1.0
    assert again == dsn
    assert await _query(again, "SELECT pg_postmaster_start_time()") == first_start


async def test_data_survives_a_stop_and_start(embedded: EmbeddedPostgres) -> None:
    """After stop() and start() the server is back on the same DSN with the data written before."""
    dsn = embedded.start()
    await _query(dsn, "CREATE TABLE kept AS SELECT 42 AS answer")
    before = await _query(dsn, "SELECT pg_postmaster_start_time()")
    embedded.stop()
    assert embedded.start() == dsn
    assert embedded.is_running()
    assert await _query(embedded.dsn, "SELECT answer FROM kept") == 42
    assert await _query(embedded.dsn, "SELECT pg_postmaster_start_time()") != before


async def test_stop_makes_the_server_unreachable(embedded: EmbeddedPostgres) -> None:
    """stop_embedded_postgres stops it; a later start brings it back."""
    dsn = embedded.start()
    stop_embedded_postgres(embedded.data_dir)
    assert not embedded.is_running()
    with pytest.raises(OSError):
        await _query(dsn, "SELECT 1")
    assert embedded.start() == dsn
    assert await _query(dsn, "SELECT 1") == 1


def test_concurrent_first_starts_from_processes_share_one_server(
    embedded: EmbeddedPostgres,
) -> None:
    """Three processes starting the same fresh data dir at once all get the one server."""
    script = (
        "import sys; from pathlib import Path; "
        "from services.kit.embedded_postgres import EmbeddedPostgres; "
        "print(EmbeddedPostgres(Path(sys.argv[1])).start())"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(embedded.data_dir)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    outputs = [process.communicate(timeout=90) for process in processes]
    assert [process.returncode for process in processes] == [0, 0, 0], outputs
    assert {out.strip() for out, _ in outputs} == {embedded.dsn}
    assert embedded.is_running()


async def test_long_data_dir_uses_a_short_socket_dir(private_dir: Path) -> None:
    """A data dir too deep for a unix socket path still works, via a short socket dir."""
    deep = private_dir / ("d" * 60) / ("e" * 60)
    server = EmbeddedPostgres(deep)
    assert len(str(server.pgdata / ".s.PGSQL.5432")) > 107
    try:
        dsn = server.start()
        assert server.socket_dir != server.pgdata
        assert len(str(server.socket_dir / ".s.PGSQL.5432")) <= 107
        assert await _query(dsn, "SELECT 1") == 1
    finally:
        server.stop()


def test_resolve_database_url_prefers_database_url(tmp_path: Path) -> None:
    """With DATABASE_URL set it is returned as is and nothing is started."""
    url = "postgresql://app:pw@db.internal:5432/app"
    settings = load_settings(
        ServiceSettings, _env_file=None, database_url=url, data_dir=tmp_path / "data"
    )
    assert resolve_database_url(settings) == url
    assert not (tmp_path / "data" / "postgres").exists()


async def test_resolve_database_url_starts_embedded_without_one(
    embedded: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without DATABASE_URL the embedded server under the data dir is started and returned."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings(ServiceSettings, _env_file=None, data_dir=embedded.data_dir)
    dsn = resolve_database_url(settings)
    assert dsn == embedded.dsn
    assert await _query(dsn, "SELECT 1") == 1


# Python code run with pgserver unimportable, as if the `embedded` extra were not installed.
WITHOUT_PGSERVER = "import runpy, sys\nsys.modules['pgserver'] = None\n"
SERVICE_SETTINGS = {
    "registry": {"FACEIT_API_KEY": "sandbox-key-4f2a9c", "LINK_VERIFICATION": "nickname"},
    "voice": {"DISCORD_TOKEN": "sandbox-bot-4f2a9c", "DISCORD_GUILD_ID": "1"},
    "ingest": {"FACEIT_WEBHOOK_SECRET": "sandbox-secret-4f2a9c"},
}


def _without_pgserver(
    code: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(SETTING_PREFIXES)}
    return subprocess.run(
        [sys.executable, "-c", WITHOUT_PGSERVER + code],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(REPO), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("service", sorted(SERVICE_SETTINGS))
def test_without_the_extra_and_database_url_the_service_names_the_extra(
    service: str, tmp_path: Path
) -> None:
    """Without pgserver and DATABASE_URL a service exits 1 naming DATABASE_URL and the extra."""
    env = {"FACEIT_VOICE_DATA_DIR": str(tmp_path / "data"), **SERVICE_SETTINGS[service]}
    code = f"runpy.run_module('services.{service}', run_name='__main__')"
    result = _without_pgserver(code, env, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "DATABASE_URL is not set" in result.stderr
    assert "faceit-voice[embedded]" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data" / "postgres").exists()


def test_without_the_extra_the_services_use_database_url(tmp_path: Path) -> None:
    """Without pgserver every service imports, and DATABASE_URL is used as is."""
    code = (
        "import services.registry.__main__, services.voice.__main__, services.ingest.__main__\n"
        "from services.kit.embedded_postgres import resolve_database_url\n"
        "from services.kit.settings import ServiceSettings\n"
        "print(resolve_database_url(ServiceSettings(_env_file=None)))\n"
    )
    url = "postgresql://app:pw@db.internal:5432/app"
    result = _without_pgserver(code, {"DATABASE_URL": url}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == url
