"""An embedded Postgres (the `pgserver` binaries) under the data dir, shared by all services.

pgserver is the optional `embedded` extra (`make setup` installs it): production gives
DATABASE_URL and runs without it, so it is imported only when a server is started.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import stat
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from urllib.parse import quote

from services.kit.database import describe_dsn
from services.kit.settings import ConfigurationError, ServiceSettings

logger = logging.getLogger(__name__)

# Longest AF_UNIX path Linux accepts (sun_path is 108 bytes including the trailing NUL).
_MAX_SOCKET_PATH = 107
_SOCKET_NAME = ".s.PGSQL.5432"
# Postgres refuses to run as root; as root we run it as this unprivileged user, like pgserver.
_SYSTEM_USER = "pgserver"


class EmbeddedPostgresError(Exception):
    """The embedded Postgres could not be initialised, started or stopped."""


class EmbeddedPostgresMissing(ConfigurationError):
    """No DATABASE_URL, and the `embedded` extra that would run a Postgres is not installed."""

    def __init__(self) -> None:
        super().__init__(
            "configuration error: DATABASE_URL is not set and the embedded Postgres is not "
            "installed - set DATABASE_URL, or install the `embedded` extra "
            "(pip install 'faceit-voice[embedded]'; `make setup` does)"
        )


def _pgserver() -> tuple[ModuleType, ModuleType]:
    """pgserver's `_commands` and `utils` modules; EmbeddedPostgresMissing when not installed."""
    try:
        with warnings.catch_warnings():
            # pgserver asks platformdirs for a runtime dir it never uses; without
            # XDG_RUNTIME_DIR that prints a RuntimeDirWarning on every start of every service.
            warnings.simplefilter("ignore", UserWarning)
            from pgserver import _commands, utils
    except ImportError as error:
        raise EmbeddedPostgresMissing() from error
    return _commands, utils


def _running_as_root() -> bool:
    return os.geteuid() == 0


class EmbeddedPostgres:
    """A Postgres cluster in `<data_dir>/postgres`, listening only on a unix socket.

    `start()` initialises the cluster on first use and is a no-op when it is already running,
    also when another process started it; starts are serialised by a file lock, so several
    processes may call it at once. The server outlives the process that started it.
    """

    def __init__(self, data_dir: Path, *, timeout: float = 60.0) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.pgdata = self.data_dir / "postgres"
        self.timeout = timeout
        self._lock_path = self.data_dir / "postgres.lock"

    @property
    def socket_dir(self) -> Path:
        """The socket's dir: the cluster dir, or a short /tmp dir when that path is too long."""
        if len(os.fsencode(self.pgdata / _SOCKET_NAME)) <= _MAX_SOCKET_PATH:
            return self.pgdata
        digest = hashlib.sha256(os.fsencode(self.pgdata)).hexdigest()[:16]
        return Path(tempfile.gettempdir()) / f"faceit-voice-pg-{digest}"

    @property
    def dsn(self) -> str:
        """The connection string for the `postgres` database of this server."""
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        """The connection string for `database` on this server."""
        return f"postgresql://postgres@/{database}?host={quote(str(self.socket_dir), safe='')}"

    def is_running(self) -> bool:
        """Whether a postmaster is running on this cluster."""
        if not (self.pgdata / "PG_VERSION").exists():
            return False
        result = self._pg_ctl(["status"], check=False)
        return result.returncode == 0

    def start(self) -> str:
        """Start the server unless it runs already; return its DSN."""
        _pgserver()  # without the extra, fail before creating the cluster's dirs
        with self._locked():
            if self.is_running():
                logger.info("embedded postgres already running in %s", self.pgdata)
                return self.dsn
            self._prepare()
            self._start()
        return self.dsn

    def stop(self) -> None:
        """Stop the server (fast shutdown: open sessions are disconnected); no-op if stopped."""
        with self._locked():
            self._stop()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._lock_path.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prepare(self) -> None:
        """Create the cluster if needed and make its dirs usable by the server's user."""
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        socket_dir = self.socket_dir
        socket_dir.mkdir(mode=0o700, exist_ok=True)
        if _running_as_root():
            pgserver_commands, pgserver_utils = _pgserver()
            entry = pgserver_utils.ensure_user_exists(_SYSTEM_USER)
            assert entry is not None
            pgserver_utils.ensure_prefix_permissions(self.pgdata)
            binaries = pgserver_commands.POSTGRES_BIN_PATH
            pgserver_utils.ensure_prefix_permissions(binaries)
            readable = stat.S_IRGRP | stat.S_IROTH
            executable = stat.S_IXGRP | stat.S_IXOTH
            pgserver_utils.ensure_folder_permissions(binaries, readable | executable)
            pgserver_utils.ensure_folder_permissions(binaries.parent / "lib", readable)
            for directory in {self.pgdata, socket_dir}:
                os.chown(directory, entry.pw_uid, entry.pw_gid)
        if not (self.pgdata / "PG_VERSION").exists():
            logger.info("initialising embedded postgres cluster in %s", self.pgdata)
            self._run(
                "initdb",
                [
                    "-D",
                    str(self.pgdata),
                    "--auth=trust",
                    "--auth-local=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    "-U",
                    "postgres",
                ],
            )

    def _start(self) -> None:
        options = f"-h '' -k '{self.socket_dir}' -c max_connections=200"
        self._pg_ctl(
            ["-w", "-t", str(int(self.timeout)), "-o", options, "-l", str(self._log), "start"]
        )
        logger.info("embedded postgres started in %s at %s", self.pgdata, describe_dsn(self.dsn))

    def _stop(self) -> None:
        if not self.is_running():
            return
        self._pg_ctl(["-w", "-t", str(int(self.timeout)), "-m", "fast", "stop"])
        logger.info("embedded postgres in %s stopped", self.pgdata)

    @property
    def _log(self) -> Path:
        return self.pgdata / "server.log"

    def _pg_ctl(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run("pg_ctl", ["-D", str(self.pgdata), *args], check=check)

    def _run(
        self, program: str, args: list[str], *, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        # Output goes to files, not pipes: the postmaster that pg_ctl forks would inherit a pipe
        # and keep it open, so reading it to the end would never finish.
        binaries: Path = _pgserver()[0].POSTGRES_BIN_PATH
        with tempfile.TemporaryFile("w+") as output:
            result = subprocess.run(
                [str(binaries / program), *args],
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                check=False,
                timeout=self.timeout + 10,
                user=_SYSTEM_USER if _running_as_root() else None,
                cwd=self.data_dir,
            )
            output.seek(0)
            text = output.read()
        if check and result.returncode != 0:
            raise EmbeddedPostgresError(
                f"{program} {' '.join(args)} failed with status {result.returncode}:\n{text}"
                f"{self._log_tail()}"
            )
        return subprocess.CompletedProcess(result.args, result.returncode, text, None)

    def _log_tail(self) -> str:
        try:
            lines = self._log.read_text(errors="replace").splitlines()[-20:]
        except OSError:
            return ""
        return "\nserver log (last lines):\n" + "\n".join(lines)


def resolve_database_url(settings: ServiceSettings) -> str:
    """DATABASE_URL when set; else start (or reuse) the embedded Postgres and return its DSN.

    Without DATABASE_URL and without the `embedded` extra: EmbeddedPostgresMissing (a
    ConfigurationError, so the process ends with its message), before anything is created.
    Blocking (it may run initdb and pg_ctl): call it before the event loop starts or through
    `asyncio.to_thread`.
    """
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        logger.info("using DATABASE_URL at %s", describe_dsn(url))
        return url
    embedded = EmbeddedPostgres(settings.data_dir)
    dsn = embedded.start()
    logger.info("no DATABASE_URL set: using the embedded postgres under %s", embedded.data_dir)
    return dsn


def stop_embedded_postgres(data_dir: Path) -> None:
    """Stop the embedded Postgres under `data_dir`, if it is running."""
    EmbeddedPostgres(data_dir).stop()
