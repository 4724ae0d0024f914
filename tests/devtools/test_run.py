"""Tests of `devtools.run`: one report of every settings problem, and the child supervision."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.processes import ManagedProcess, child_environment
from devtools.run import (
    Child,
    Supervisor,
    Terminal,
    load_system_settings,
    local_target,
    service_environment,
)
from services.kit.settings import ConfigurationError
from tests.support import eventually

# A fake service: records "start NAME"/"stop NAME" in a shared events file, creates its ready
# file, and waits for SIGTERM. argv: name, events file, mode ("ok", "fail", "ignore-term").
FAKE_SERVICE = """
import pathlib, signal, sys
name, events, mode = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]

def record(what):
    with events.open("a") as handle:
        handle.write(f"{what} {name}\\n")

def on_term(*_):
    if mode == "ignore-term":
        print("SIGTERM ignored", flush=True)
        return
    record("stop")
    sys.exit(0)

signal.signal(signal.SIGTERM, on_term)
record("start")
print(f"hello from {name}", flush=True)
if mode == "fail":
    sys.exit("fatal: cannot start")
if mode != "never-ready":
    (events.parent / f"{name}.ready").touch()
while True:
    signal.pause()
"""

SETTINGS_PREFIXES = ("DATABASE_", "DISCORD_", "FACEIT_", "GRPC_", "INGEST_", "VOICE_", "REGISTRY_")


class FakeSystem:
    """Fake children in a tmp dir, the events they record and what each looked like when ready."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.events_path = root / "events"
        self.events_path.touch()
        self.output: list[str] = []
        self.seen_at_ready: dict[str, list[str]] = {}
        self.children: dict[str, Child] = {}

    def events(self) -> list[str]:
        """Every event recorded so far, in order."""
        return self.events_path.read_text().splitlines()

    def add(self, name: str, mode: str = "ok", *, start_timeout: float = 60.0) -> Child:
        """A fake child `name` behaving as `mode`."""
        terminal = Terminal(_Lines(self.output), readable=False)
        process = ManagedProcess(
            name,
            [sys.executable, "-c", FAKE_SERVICE, name, str(self.events_path), mode],
            env=child_environment({}),
            log_dir=self.root / "logs",
            on_output=terminal.writer(name),
        )

        async def probe() -> bool:
            if not (self.root / f"{name}.ready").exists():
                return False
            self.seen_at_ready[name] = self.events()
            return True

        child = Child(process, probe, start_timeout=start_timeout)
        self.children[name] = child
        return child


class _Lines(io.StringIO):
    """A text stream that appends each written line to a list."""

    def __init__(self, lines: list[str]) -> None:
        super().__init__()
        self._lines = lines

    def write(self, text: str) -> int:
        self._lines.extend(text.splitlines())
        return len(text)


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[FakeSystem]:
    """A FakeSystem whose children are all killed after the test, whatever happened."""
    system = FakeSystem(tmp_path)
    yield system
    for child in system.children.values():
        child.process.send_signal(signal.SIGKILL)


def _without_settings() -> dict[str, str]:
    """No project settings; the dev tools come from the source tree (they are not installed)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    return {**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}


async def test_empty_environment_exits_2_listing_every_missing_variable(tmp_path: Path) -> None:
    """`python -m devtools.run` without settings exits 2 naming every service's missing variable."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "devtools.run",
        cwd=tmp_path,
        env=_without_settings(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    report = err.decode()

    assert process.returncode == 2
    assert out == b""
    assert "configuration error: 4 problems" in report
    assert "[registry] FACEIT_API_KEY: missing - set it in .env or the environment" in report
    assert "[voice] DISCORD_TOKEN: missing" in report
    assert "[voice] DISCORD_GUILD_ID: missing" in report
    assert "[ingest] FACEIT_WEBHOOK_SECRET: missing - set it, or set " in report
    assert not os.listdir(tmp_path)  # nothing was started, not even the database


def test_shared_problems_are_reported_once_with_every_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bad shared variable is one line tagged with all three services, next to the others."""
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("LOG_LEVEL", "LOUD")
    monkeypatch.setenv("DISCORD_TOKEN", "changeme")
    with pytest.raises(ConfigurationError) as failure:
        load_system_settings()
    lines = failure.value.message.splitlines()
    assert lines[0].startswith("configuration error: 5 problems")
    assert sum("LOG_LEVEL" in line for line in lines) == 1
    assert any(
        line.startswith("  [registry, voice, ingest] LOG_LEVEL: must be one of") for line in lines
    )
    assert "  [voice] DISCORD_TOKEN: is a placeholder value - set the real secret" in lines


def _complete_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in os.environ:
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FACEIT_API_KEY", "k-123456")
    monkeypatch.setenv("DISCORD_TOKEN", "bot-token-123")
    monkeypatch.setenv("DISCORD_GUILD_ID", "42")
    monkeypatch.setenv("FACEIT_WEBHOOK_SECRET", "hook-secret-1")
    monkeypatch.setenv("LINK_VERIFICATION", "nickname")


def test_ports_the_runner_cannot_use_are_configuration_problems(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Port 0 for a gRPC server and two services on one port are reported before any start."""
    _complete_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("REGISTRY_GRPC_PORT", "0")
    monkeypatch.setenv("INGEST_GRPC_PORT", "50052")
    with pytest.raises(ConfigurationError) as failure:
        load_system_settings()
    message = failure.value.message
    assert message.startswith("configuration error: 2 problems")
    assert "[run] REGISTRY_GRPC_PORT: 0 (any free port) cannot be used here" in message
    assert "[run] INGEST_GRPC_PORT: 50052 is also VOICE_GRPC_PORT" in message


def test_children_get_one_database_and_each_others_addresses(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The children's environment carries the runner's DSN and the real service addresses."""
    _complete_environment(monkeypatch, tmp_path)
    monkeypatch.setenv("REGISTRY_GRPC_PORT", "6100")
    monkeypatch.setenv("VOICE_GRPC_HOST", "0.0.0.0")
    monkeypatch.setenv("VOICE_GRPC_PORT", "6200")
    settings = load_system_settings()
    base = {"PATH": "/bin", "REGISTRY_SERVICE_ADDR": "registry:50053"}
    env = service_environment(base, settings, "postgresql://db/x")
    assert env == {
        "PATH": "/bin",
        "DATABASE_URL": "postgresql://db/x",
        "REGISTRY_SERVICE_ADDR": "127.0.0.1:6100",
        "VOICE_SERVICE_ADDR": "127.0.0.1:6200",
        "PYTHONUNBUFFERED": "1",
    }
    assert settings.ingest_target == "127.0.0.1:50051"
    assert settings.webhook_url == "http://127.0.0.1:8080/faceit-webhook"


def test_local_target_connects_to_wildcards_locally() -> None:
    """Wildcard bind addresses become 127.0.0.1, IPv6 literals get brackets."""
    assert local_target("0.0.0.0", 1) == "127.0.0.1:1"
    assert local_target("::", 2) == "127.0.0.1:2"
    assert local_target("::1", 3) == "[::1]:3"
    assert local_target("10.0.0.5", 4) == "10.0.0.5:4"


def test_terminal_prefixes_lines_and_renders_json_logs() -> None:
    """Each line gets its service prefix; on a terminal JSON log lines become readable text."""
    lines: list[str] = []
    record = {
        "ts": "2024-05-01T10:11:12.345Z",
        "level": "INFO",
        "logger": "services.voice",
        "msg": "match opened",
        "service": "voice",
        "match_id": "m-1",
        "color_message": "\u001b[1mmatch opened",
        "exc": "Traceback\n  boom",
    }
    readable = Terminal(_Lines(lines), readable=True).writer("voice")
    readable(json.dumps(record))
    readable("plain text")
    Terminal(_Lines(lines), readable=False).writer("registry")('{"msg": "x"}')
    assert lines == [
        "voice    | 10:11:12.345 INFO    services.voice: match opened match_id=m-1",
        "voice    | Traceback",
        "voice    |   boom",
        "voice    | plain text",
        'registry | {"msg": "x"}',
    ]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_start_in_order_each_after_the_previous_is_ready_and_stop_in_reverse(
    fakes: FakeSystem, signum: int
) -> None:
    """Children start one by one, each after the previous is ready; a signal stops them reversed."""
    supervisor = Supervisor([fakes.add("a"), fakes.add("b"), fakes.add("c")], stop_timeout=30)
    running = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), timeout=60)

    assert fakes.seen_at_ready == {
        "a": ["start a"],
        "b": ["start a", "start b"],
        "c": ["start a", "start b", "start c"],
    }
    os.kill(os.getpid(), signum)
    assert await asyncio.wait_for(running, timeout=60) == 0
    assert fakes.events()[3:] == ["stop c", "stop b", "stop a"]
    assert {"a | hello from a", "b | hello from b", "c | hello from c"} <= {
        " ".join(line.split()) for line in fakes.output
    }


async def test_a_child_that_dies_stops_the_others_and_fails_naming_it(
    fakes: FakeSystem, caplog: pytest.LogCaptureFixture
) -> None:
    """When a running child dies, the others are stopped in reverse order and the run fails."""
    supervisor = Supervisor([fakes.add("a"), fakes.add("b"), fakes.add("c")], stop_timeout=30)
    running = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), timeout=60)
    victim = fakes.children["b"].process.pid
    assert victim is not None

    os.kill(victim, signal.SIGKILL)
    assert await asyncio.wait_for(running, timeout=60) == 1
    assert fakes.events()[3:] == ["stop c", "stop a"]
    assert f"b exited with code {-signal.SIGKILL}" in caplog.text
    assert not any(child.process.running for child in fakes.children.values())


async def test_a_child_that_cannot_start_stops_the_started_ones(
    fakes: FakeSystem, caplog: pytest.LogCaptureFixture
) -> None:
    """A child exiting before it is ready fails the run; later children never start."""
    supervisor = Supervisor([fakes.add("a"), fakes.add("b", "fail"), fakes.add("c")])
    assert await asyncio.wait_for(supervisor.run(), timeout=60) == 1
    assert fakes.events() == ["start a", "start b", "stop a"]
    assert "b exited with code 1 before it was ready" in caplog.text
    assert "fatal: cannot start" in caplog.text
    assert fakes.children["c"].process.pid is None


async def test_an_earlier_child_dying_while_a_later_one_starts_fails_at_once(
    fakes: FakeSystem, caplog: pytest.LogCaptureFixture
) -> None:
    """A ready child that dies while the next one is starting ends the run without waiting."""
    supervisor = Supervisor([fakes.add("a"), fakes.add("b", "never-ready", start_timeout=600)])
    running = asyncio.create_task(supervisor.run())
    await eventually(
        lambda: _has_event(fakes, "start b"), timeout=60, what="b started (a is ready)"
    )
    first = fakes.children["a"].process.pid
    assert first is not None

    os.kill(first, signal.SIGKILL)
    assert await asyncio.wait_for(running, timeout=60) == 1
    assert f"a exited with code {-signal.SIGKILL}" in caplog.text
    assert fakes.events()[-1] == "stop b"


async def _has_event(fakes: FakeSystem, event: str) -> bool:
    return event in fakes.events()


async def test_a_second_signal_kills_children_that_do_not_stop(fakes: FakeSystem) -> None:
    """A second SIGINT while a child ignores SIGTERM kills every child; status 128+SIGINT."""
    supervisor = Supervisor([fakes.add("a"), fakes.add("b", "ignore-term")], stop_timeout=600)
    running = asyncio.create_task(supervisor.run())
    await asyncio.wait_for(supervisor.ready.wait(), timeout=60)

    os.kill(os.getpid(), signal.SIGINT)
    await eventually(
        lambda: _has_output(fakes, "b | SIGTERM ignored"), timeout=60, what="b ignoring SIGTERM"
    )
    os.kill(os.getpid(), signal.SIGINT)
    assert await asyncio.wait_for(running, timeout=60) == 128 + signal.SIGINT
    assert fakes.children["b"].process.returncode == -signal.SIGKILL
    assert not any(child.process.running for child in fakes.children.values())


async def _has_output(fakes: FakeSystem, text: str) -> bool:
    return any(" ".join(line.split()) == text for line in fakes.output)
