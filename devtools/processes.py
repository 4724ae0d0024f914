"""Child processes (services, sandboxes) of a supervisor: start, wait until ready, stop, kill."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import grpc
import grpc.aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from services.kit.healthcheck import check_health

logger = logging.getLogger(__name__)

Probe = Callable[[], Awaitable[bool]]
"""A readiness check of a child: true once the child is ready."""

# The source tree: the installed package holds only the services, so children that run the
# sandboxes, benchmarks or dev tools from another directory import them from here.
SOURCE_ROOT = Path(__file__).resolve().parents[1]
# How long the output of an exited child may still be drained (a grandchild may hold the pipe).
_OUTPUT_DRAIN_S = 5.0
# The longest output line copied (a long traceback in one JSON log line fits).
_LINE_LIMIT = 1 << 20
# How often the log file of a child writing it itself is read until its ready line.
_READY_POLL_S = 0.02


class ProcessFailed(Exception):
    """A child process exited or did not become ready in time; the message says which and why."""


class ManagedProcess:
    """One child process whose output (stdout and stderr) goes to a log file.

    `start()` waits until the child is ready: either it printed a JSON line with
    `"ready": true` on stdout (the sandboxes do), or the given probe succeeds (the services).
    `on_output`, when given, also receives every line the child writes (without the newline),
    e.g. to show it on a terminal: its output then comes through a pipe that this process
    copies line by line. Without it the child writes into the log file itself, and this
    process reads the file only until the ready line: a supervisor that shares the machine
    with what it measures (the benchmarks) is not woken by every line its children log.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str],
        log_dir: Path,
        cwd: Path | None = None,
        on_output: Callable[[str], None] | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.cwd = cwd
        self.log_path = log_dir / f"{name}.log"
        self._on_output = on_output
        self._proc: asyncio.subprocess.Process | None = None
        self._pump: asyncio.Task[None] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._proc.pid if self._proc else None

    @property
    def running(self) -> bool:
        """Whether the child was started and has not exited."""
        return self._proc is not None and self._proc.returncode is None

    @property
    def returncode(self) -> int | None:
        """The child's exit code once it exited (negative: killed by that signal)."""
        return self._proc.returncode if self._proc else None

    async def start(
        self,
        *,
        ready_probe: Callable[[], Awaitable[bool]] | None = None,
        timeout: float = 60.0,
    ) -> dict[str, Any]:
        """Start the child and wait until it is ready; return its ready line (or `{}`)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        start = self._log.tell()
        on_output = self._on_output
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                env=self.env,
                cwd=self.cwd,
                stdout=self._log if on_output is None else asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal reaches the supervisor only
                limit=_LINE_LIMIT,
            )
        except OSError as error:
            self._log.close()
            self._log = None
            raise ProcessFailed(f"{self.name} could not be started: {error}") from error
        ready_line: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        watch = (
            self._find_ready_line(ready_line, start)
            if on_output is None
            else self._copy_output(ready_line, on_output)
        )
        self._pump = asyncio.create_task(watch, name=f"{self.name}-log")
        try:
            async with asyncio.timeout(timeout):
                if ready_probe is None:
                    return await self._await_ready_line(ready_line)
                while not await ready_probe():
                    await self._raise_if_exited()
                    await asyncio.sleep(0.05)  # polling interval of the readiness probe
                return {}
        except TimeoutError:
            await self.kill()
            raise ProcessFailed(
                f"{self.name} was not ready after {timeout:.0f}s; see {self.log_path}"
            ) from None

    async def _await_ready_line(self, ready_line: asyncio.Future[dict[str, Any]]) -> dict[str, Any]:
        assert self._proc is not None
        exited: asyncio.Future[Any] = asyncio.ensure_future(self._proc.wait())
        waiting: set[asyncio.Future[Any]] = {ready_line, exited}
        try:
            done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if ready_line in done:
            return ready_line.result()
        await self._raise_if_exited()
        raise ProcessFailed(f"{self.name} stopped before it was ready")

    async def _raise_if_exited(self) -> None:
        if self._proc is not None and self._proc.returncode is not None:
            await self._finish()  # the last lines (a traceback, say) must be in the log first
            raise ProcessFailed(
                f"{self.name} exited with code {self._proc.returncode} before it was ready; "
                f"last lines of {self.log_path}:\n{self.tail()}"
            )

    async def _copy_output(
        self, ready_line: asyncio.Future[dict[str, Any]], on_output: Callable[[str], None]
    ) -> None:
        """Copy the child's output line by line into the log and to `on_output`."""
        assert self._proc is not None and self._proc.stdout is not None and self._log is not None
        while True:
            line = await _read_line(self._proc.stdout)
            if line is None:
                line = f"[{self.name}: an over-long output line was dropped]\n".encode()
            elif not line:
                return
            self._log.write(line)
            self._log.flush()
            on_output(line.decode(errors="replace").rstrip("\r\n"))
            if not ready_line.done() and (ready := _ready_of(line)) is not None:
                ready_line.set_result(ready)

    async def _find_ready_line(
        self, ready_line: asyncio.Future[dict[str, Any]], start: int
    ) -> None:
        """Read what the child wrote into the log from `start` until its ready line, or until
        it exited."""
        assert self._proc is not None
        with self.log_path.open("rb") as log:
            log.seek(start)
            partial = b""
            while not ready_line.done():
                exited = self._proc.returncode is not None
                *lines, partial = (partial + log.read()).split(b"\n")
                ready = next(filter(None, map(_ready_of, lines)), None)
                if ready is not None:
                    ready_line.set_result(ready)
                elif exited:
                    return
                else:
                    await asyncio.sleep(_READY_POLL_S)  # polling interval of the log file

    def tail(self, lines: int = 15) -> str:
        """The last lines the child wrote."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def send_signal(self, signum: int) -> None:
        """Send `signum` to the child if it still runs (does not wait)."""
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signum)

    async def wait(self) -> int:
        """Wait until the child exits (its output fully copied); return its exit code."""
        if self._proc is None:
            raise RuntimeError(f"{self.name} was not started")
        code = await self._proc.wait()
        await self._finish()
        return code

    async def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; return the exit code."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(timeout):
                    await self._proc.wait()
            except TimeoutError:
                logger.warning("%s did not stop within %.0fs: killing it", self.name, timeout)
                await self.kill()
        await self._finish()
        return self._proc.returncode

    async def kill(self) -> None:
        """SIGKILL the child at once, as a crash would."""
        if self._proc is None:
            return
        if self._proc.returncode is None:
            self.send_signal(signal.SIGKILL)
            await self._proc.wait()
        await self._finish()

    async def _finish(self) -> None:
        """After the child exited: let the output copy reach the end, then close the log."""
        pump = self._pump
        if pump is not None:
            # asyncio.wait, unlike `await pump`, neither cancels the pump when our caller is
            # cancelled nor swallows that cancellation.
            await asyncio.wait({pump}, timeout=_OUTPUT_DRAIN_S)
            if self._pump is pump:
                self._pump = None
                self._end_pump(pump)
        if self._pump is None and self._log is not None:
            self._log.close()
            self._log = None

    def _end_pump(self, pump: asyncio.Task[None]) -> None:
        if not pump.done():
            # A grandchild still holds the output pipe open; stop copying rather than hang.
            logger.warning("output of %s still open after it exited: no longer copied", self.name)
            pump.cancel()
        elif not pump.cancelled() and pump.exception() is not None:
            logger.error("copying the output of %s failed", self.name, exc_info=pump.exception())


def _ready_of(line: bytes) -> dict[str, Any] | None:
    """The ready line's JSON object, None for any other line."""
    if not line.startswith(b"{"):
        return None
    with contextlib.suppress(ValueError):
        parsed = json.loads(line)
        if isinstance(parsed, dict) and parsed.get("ready") is True:
            return parsed
    return None


async def _read_line(stream: asyncio.StreamReader) -> bytes | None:
    """The next line (b"" at the end), or None for a line over the limit, skipped to its end.

    Not `readline()`: past the limit it discards only what it has buffered, so the rest of
    the line would come back as lines of their own.
    """
    try:
        return await stream.readuntil(b"\n")
    except asyncio.IncompleteReadError as error:
        return error.partial  # the last line, without a newline
    except asyncio.LimitOverrunError:
        pass
    while True:
        try:
            await stream.readuntil(b"\n")
            return None
        except asyncio.IncompleteReadError:
            return None
        except asyncio.LimitOverrunError as error:
            await stream.readexactly(error.consumed)  # drop what is buffered, then read on


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def child_environment(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without the project's settings, plus `overrides`.

    A developer's `.env` or exported settings must not leak into sandbox children. The source
    tree goes first on PYTHONPATH, so a child started in another directory finds the sandboxes.
    """
    prefixes = ("DATABASE_", "DISCORD_", "FACEIT_", "GRPC_", "INGEST_", "VOICE_", "REGISTRY_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(prefixes)}
    env.update(overrides)
    env.setdefault("PYTHONUNBUFFERED", "1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    return env


PROBE_DEADLINE_S = 1.0
"""Deadline of one health check while waiting for a service."""


def grpc_probe(target: str) -> Probe:
    """A readiness probe: whether the gRPC server at `target` reports SERVING."""

    async def probe() -> bool:
        return (await check_health(target, timeout=PROBE_DEADLINE_S)).serving

    return probe


def grpc_answer_probe(target: str) -> Probe:
    """A probe of a standby: whether the health service at `target` answers at all (SERVING
    or NOT_SERVING)."""

    async def probe() -> bool:
        async with grpc.aio.insecure_channel(target) as channel:
            try:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=PROBE_DEADLINE_S
                )
            except grpc.aio.AioRpcError:
                return False
        return True

    return probe
