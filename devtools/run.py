"""`python -m devtools.run` (`make run`): the three services as supervised child processes.

Reads `.env` and the environment, checks the settings of all three services at once (exit 2
listing every problem), starts the embedded Postgres unless DATABASE_URL is set, then starts
registry, voice and ingest in that order, each waited for with the gRPC health check. Their
output goes to `<data dir>/logs/<service>.log` and to the terminal with a service prefix.
SIGINT/SIGTERM stops them in reverse order (exit 0); a second signal kills them. When a child
exits on its own, the others are stopped and the runner exits 1 naming it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from pydantic import ValidationError
from pydantic_settings import BaseSettings

from devtools.processes import ManagedProcess, Probe, ProcessFailed, grpc_probe, python_module
from services.ingest.settings import IngestSettings
from services.kit.embedded_postgres import EmbeddedPostgres
from services.kit.logging import setup_logging
from services.kit.settings import ConfigurationError, describe_errors
from services.registry.settings import RegistrySettings
from services.voice.settings import VoiceSettings

# Named, not __name__: under `python -m devtools.run` that would be "__main__".
logger = logging.getLogger("devtools.run")

START_TIMEOUT_S = 120.0
"""How long one service may take to report SERVING (voice logs in to Discord first)."""
STOP_TIMEOUT_S = 20.0
"""How long one service may take to exit after SIGTERM before it is killed."""
EXIT_CONFIGURATION = 2
EXIT_FAILED = 1


@dataclass(frozen=True)
class SystemSettings:
    """The validated settings of the three services, read from the same environment."""

    registry: RegistrySettings
    voice: VoiceSettings
    ingest: IngestSettings

    @property
    def registry_target(self) -> str:
        """Where the registry's gRPC server is reached on this machine."""
        return local_target(self.registry.grpc_host, self.registry.grpc_port)

    @property
    def voice_target(self) -> str:
        """Where the voice gRPC server is reached on this machine."""
        return local_target(self.voice.grpc_host, self.voice.grpc_port)

    @property
    def ingest_target(self) -> str:
        """Where the ingest gRPC server is reached on this machine."""
        return local_target(self.ingest.grpc_host, self.ingest.grpc_port)

    @property
    def webhook_url(self) -> str:
        """The local URL of the FACEIT webhook endpoint."""
        host = local_target(self.ingest.ingest_http_host, self.ingest.ingest_http_port)
        return f"http://{host}/faceit-webhook"


def local_target(host: str, port: int) -> str:
    """`host:port` to connect to a server bound to `host` (a wildcard means this machine)."""
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    elif ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


def _settings_problems(
    cls: type[BaseSettings], values: Mapping[str, Any]
) -> tuple[BaseSettings | None, list[str]]:
    try:
        return cls(**values), []
    except ValidationError as error:
        return None, describe_errors(cls, error).splitlines()[1:]


def _ports(instance: BaseSettings | None) -> dict[str, int]:
    """The service's listening ports by their environment names (e.g. VOICE_GRPC_PORT)."""
    if instance is None:
        return {}
    return {
        str(field.validation_alias): getattr(instance, name)
        for name, field in type(instance).model_fields.items()
        if name.endswith("_port")
    }


def _port_problems(ports: Mapping[str, int]) -> list[str]:
    problems = [
        f"  {name}: 0 (any free port) cannot be used here: the runner must know the port "
        "to wait for the service and connect the others to it"
        for name, port in ports.items()
        if port == 0 and name != "INGEST_HTTP_PORT"
    ]
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port and port in seen:
            problems.append(f"  {name}: {port} is also {seen[port]} - give each its own port")
        seen.setdefault(port, name)
    return problems


def load_system_settings(**values: Any) -> SystemSettings:
    """Validate the settings of registry, voice and ingest from the same environment.

    Raises ConfigurationError listing every problem of every service at once, each line
    tagged with the services it concerns (`run` for what only this runner requires).
    Keyword arguments go to every settings class (for example `_env_file=None`).
    """
    found: dict[str, BaseSettings | None] = {}
    problems: dict[str, list[str]] = {}
    ports: dict[str, int] = {}
    services: tuple[tuple[str, type[BaseSettings]], ...] = (
        ("registry", RegistrySettings),
        ("voice", VoiceSettings),
        ("ingest", IngestSettings),
    )
    for service, cls in services:
        instance, lines = _settings_problems(cls, values)
        found[service] = instance
        ports.update(_ports(instance))
        for line in lines:
            problems.setdefault(line, []).append(service)
    for line in _port_problems(ports):
        problems.setdefault(line, []).append("run")
    registry, voice, ingest = found["registry"], found["voice"], found["ingest"]
    if (
        not problems
        and isinstance(registry, RegistrySettings)
        and isinstance(voice, VoiceSettings)
        and isinstance(ingest, IngestSettings)
    ):
        return SystemSettings(registry, voice, ingest)
    lines = [f"  [{', '.join(names)}] {line.strip()}" for line, names in problems.items()]
    count = len(lines)
    header = (
        f"configuration error: {count} problem{'s' if count != 1 else ''} "
        "(set them in .env or the environment; .env.example lists every variable)"
    )
    raise ConfigurationError("\n".join([header, *lines]))


def service_environment(
    base: Mapping[str, str], settings: SystemSettings, database_url: str
) -> dict[str, str]:
    """The children's environment: `base`, one database, and each other's real addresses."""
    wiring = {
        "REGISTRY_SERVICE_ADDR": settings.registry_target,
        "VOICE_SERVICE_ADDR": settings.voice_target,
    }
    for name, target in wiring.items():
        given = base.get(name)
        if given and given != target:
            logger.warning("%s=%s is replaced by %s: the runner's own service", name, given, target)
    return {**base, **wiring, "DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1"}


def render_log_line(line: str) -> str:
    """A service's JSON log line as a readable line (other lines unchanged)."""
    if not line.startswith("{"):
        return line
    try:
        entry = json.loads(line)
    except ValueError:
        return line
    if not isinstance(entry, dict) or "msg" not in entry:
        return line
    moment = str(entry.pop("ts", ""))[11:23]
    level = str(entry.pop("level", ""))
    source = entry.pop("logger", "")
    message = entry.pop("msg")
    entry.pop("service", None)
    entry.pop("color_message", None)  # uvicorn's copy of msg with terminal colour codes
    failure = entry.pop("exc", None)
    text = f"{moment} {level:<7} {source}: {message}"
    fields = " ".join(f"{key}={value}" for key, value in entry.items())
    if fields:
        text = f"{text} {fields}"
    if failure:
        text = f"{text}\n{failure}"
    return text


class Terminal:
    """Shows the children's output on one stream, every line prefixed with its service."""

    def __init__(self, stream: TextIO, *, readable: bool, width: int = 8) -> None:
        self._stream = stream
        self._readable = readable
        self._width = width

    def writer(self, name: str) -> Callable[[str], None]:
        """A line callback (ManagedProcess `on_output`) for the child `name`."""
        prefix = f"{name:<{self._width}} | "

        def write(line: str) -> None:
            text = render_log_line(line) if self._readable else line
            self._stream.write("".join(f"{prefix}{part}\n" for part in text.split("\n")))
            self._stream.flush()

        return write


@dataclass(frozen=True)
class Child:
    """One supervised child: its process, and the probe that says it is ready."""

    process: ManagedProcess
    probe: Probe
    start_timeout: float = START_TIMEOUT_S

    @property
    def name(self) -> str:
        """The child's name (its log prefix and file name)."""
        return self.process.name


class Supervisor:
    """Starts children in order (each waited for), watches them, stops them in reverse order.

    `run()` returns the exit status: 0 after a clean stop on SIGINT/SIGTERM, 1 when a child
    exited or did not become ready, 128+signal when a second signal killed the children.
    `ready` is set once every child is ready.
    """

    def __init__(self, children: Sequence[Child], *, stop_timeout: float = STOP_TIMEOUT_S) -> None:
        self._children = list(children)
        self._stop_timeout = stop_timeout
        self._signals = 0
        self._killed_by: int | None = None
        self.ready = asyncio.Event()

    async def run(self) -> int:
        """Run the children until a signal or until one of them stops; return the status."""
        loop = asyncio.get_running_loop()
        work = asyncio.create_task(self._start_and_watch(), name="supervise")
        handled = (signal.SIGINT, signal.SIGTERM)
        for signum in handled:
            loop.add_signal_handler(signum, self._on_signal, signum, work)
        try:
            await asyncio.wait({work})
            status = self._outcome(work)
        finally:
            if not work.done():
                work.cancel()
                await asyncio.wait({work})
            await self._stop_all()
            for signum in handled:
                loop.remove_signal_handler(signum)
        if self._killed_by is not None:
            return 128 + self._killed_by
        return status

    def _outcome(self, work: asyncio.Task[None]) -> int:
        if work.cancelled():
            return 0
        failure = work.exception()
        if isinstance(failure, ProcessFailed):
            logger.error("%s; stopping the other services", failure)
        elif failure is not None:
            logger.error("supervision failed; stopping the services", exc_info=failure)
        return EXIT_FAILED

    async def _start_and_watch(self) -> None:
        exits: dict[asyncio.Task[object], Child] = {}
        try:
            for child in self._children:
                logger.info("starting %s (log: %s)", child.name, child.process.log_path)
                starting: asyncio.Task[object] = asyncio.create_task(
                    child.process.start(ready_probe=child.probe, timeout=child.start_timeout)
                )
                try:
                    done, _ = await asyncio.wait(
                        {starting, *exits}, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    if not starting.done():
                        starting.cancel()
                        await asyncio.wait({starting})
                if starting not in done:
                    raise self._exited(exits, done)
                starting.result()
                logger.info("%s is ready", child.name)
                exits[asyncio.create_task(child.process.wait())] = child
            logger.info("all services ready; Ctrl-C stops them")
            self.ready.set()
            done, _ = await asyncio.wait(exits, return_when=asyncio.FIRST_COMPLETED)
            raise self._exited(exits, done)
        finally:
            for task in exits:
                task.cancel()

    @staticmethod
    def _exited(
        exits: Mapping[asyncio.Task[object], Child], done: set[asyncio.Task[object]]
    ) -> ProcessFailed:
        """The failure naming the first child (in start order) among the `done` exits."""
        task, child = next((task, child) for task, child in exits.items() if task in done)
        return ProcessFailed(
            f"{child.name} exited with code {task.result()}; see {child.process.log_path}"
        )

    async def _stop_all(self) -> None:
        for child in reversed(self._children):
            if not child.process.running:
                await child.process.stop()
                continue
            logger.info("stopping %s", child.name)
            code = await child.process.stop(timeout=self._stop_timeout)
            logger.info("%s stopped (exit code %s)", child.name, code)

    def _on_signal(self, signum: int, work: asyncio.Task[None]) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals == 1:
            logger.info("%s received: stopping the services (again to kill them)", name)
            work.cancel()
            return
        logger.warning("%s again: killing the services", name)
        self._killed_by = signum
        for child in self._children:
            child.process.send_signal(signal.SIGKILL)


def service_children(
    settings: SystemSettings,
    env: Mapping[str, str],
    *,
    log_dir: Path,
    terminal: Terminal,
) -> list[Child]:
    """The three services in start order, each with its gRPC health probe."""
    targets = {
        "registry": settings.registry_target,
        "voice": settings.voice_target,
        "ingest": settings.ingest_target,
    }
    return [
        Child(
            ManagedProcess(
                name,
                python_module(f"services.{name}"),
                env=env,
                log_dir=log_dir,
                on_output=terminal.writer(name),
            ),
            grpc_probe(target),
        )
        for name, target in targets.items()
    ]


def _start_database(settings: SystemSettings) -> tuple[str, EmbeddedPostgres | None]:
    """DATABASE_URL, or the embedded Postgres's DSN and the server when this run started it."""
    given = settings.registry.database_url
    if given is not None:
        return given.get_secret_value(), None
    embedded = EmbeddedPostgres(settings.registry.data_dir)
    started_here = not embedded.is_running()
    dsn = embedded.start()
    logger.info("no DATABASE_URL: using the embedded postgres under %s", embedded.data_dir)
    return dsn, embedded if started_here else None


async def run(settings: SystemSettings, *, environ: Mapping[str, str], stream: TextIO) -> int:
    """Database, then the supervised services until a signal or a failure; the exit status."""
    dsn, embedded = await asyncio.to_thread(_start_database, settings)
    try:
        terminal = Terminal(stream, readable=stream.isatty())
        children = service_children(
            settings,
            service_environment(environ, settings, dsn),
            log_dir=settings.registry.data_dir / "logs",
            terminal=terminal,
        )
        logger.info(
            "webhook %s; gRPC: ingest %s, voice %s, registry %s",
            settings.webhook_url,
            settings.ingest_target,
            settings.voice_target,
            settings.registry_target,
        )
        return await Supervisor(children).run()
    finally:
        if embedded is not None:
            logger.info("stopping the embedded postgres this run started")
            await asyncio.to_thread(embedded.stop)


def main() -> int:
    """Entry point: validate everything, then run; returns the exit status."""
    try:
        settings = load_system_settings()
    except ConfigurationError as error:
        sys.stderr.write(f"devtools.run: {error.message}\n")
        return EXIT_CONFIGURATION
    setup_logging(settings.registry.log_level_number, service="run")
    try:
        return asyncio.run(run(settings, environ=os.environ, stream=sys.stdout))
    except KeyboardInterrupt:
        return 128 + signal.SIGINT


if __name__ == "__main__":
    sys.exit(main())
