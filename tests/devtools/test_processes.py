"""Tests of ManagedProcess with small real child processes: readiness, output, stop and kill."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.processes import ManagedProcess, ProcessFailed, child_environment

READY_LINE = """
import json, signal, sys
signal.signal(signal.SIGTERM, lambda *_: (print("got SIGTERM", flush=True), sys.exit(0)))
print("booting", flush=True)
print("a warning", file=sys.stderr, flush=True)
print(json.dumps({"ready": True, "url": "http://x"}), flush=True)
while True:
    signal.pause()
"""

READY_FILE = """
import pathlib, signal, sys
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
pathlib.Path(sys.argv[1]).write_text("ready")
while True:
    signal.pause()
"""

DIES_AT_ONCE = """
import sys
print("about to fail", flush=True)
raise SystemExit("fatal: no config")
"""

IGNORES_SIGTERM = """
import signal
import subprocess
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('{"ready": true}', flush=True)
while True:
    signal.pause()
"""


def _process(
    tmp_path: Path, code: str, *args: str, lines: list[str] | None = None
) -> ManagedProcess:
    return ManagedProcess(
        "child",
        [sys.executable, "-c", code, *args],
        env=child_environment({}),
        log_dir=tmp_path / "logs",
        on_output=None if lines is None else lines.append,
    )


async def test_ready_line_is_returned_and_all_output_is_logged_and_echoed(tmp_path: Path) -> None:
    """start() returns the JSON ready line; stdout and stderr reach the log and on_output."""
    lines: list[str] = []
    process = _process(tmp_path, READY_LINE, lines=lines)
    try:
        ready = await process.start(timeout=30)
        assert ready == {"ready": True, "url": "http://x"}
        assert process.running and process.pid is not None
    finally:
        code = await process.stop(timeout=10)
    assert code == 0
    assert lines == ["booting", "a warning", '{"ready": true, "url": "http://x"}', "got SIGTERM"]
    assert process.log_path.read_text().splitlines() == lines


async def test_without_on_output_the_child_writes_its_log_itself(tmp_path: Path) -> None:
    """Without on_output the child's stdout and stderr are the log file: no line it writes
    passes through the supervisor, which still finds the ready line there."""
    process = _process(tmp_path, READY_LINE)
    try:
        ready = await process.start(timeout=30)
        assert ready == {"ready": True, "url": "http://x"}
        for fd in (1, 2):
            assert os.readlink(f"/proc/{process.pid}/fd/{fd}") == str(process.log_path)
    finally:
        code = await process.stop(timeout=10)
    assert code == 0
    assert process.log_path.read_text().splitlines() == [
        "booting",
        "a warning",
        '{"ready": true, "url": "http://x"}',
        "got SIGTERM",
    ]


async def test_probe_decides_readiness(tmp_path: Path) -> None:
    """With a probe, start() returns only once the probe is true."""
    marker = tmp_path / "ready"

    async def probe() -> bool:
        return marker.exists()

    process = _process(tmp_path, READY_FILE, str(marker))
    try:
        assert await process.start(ready_probe=probe, timeout=30) == {}
        assert marker.read_text() == "ready"
    finally:
        await process.stop(timeout=10)


async def test_exit_before_the_ready_line_names_the_child_and_shows_its_last_lines(
    tmp_path: Path,
) -> None:
    """A child that exits before its ready line fails start() with its code and output."""
    process = _process(tmp_path, DIES_AT_ONCE)
    with pytest.raises(ProcessFailed) as failure:
        await process.start(timeout=30)
    message = str(failure.value)
    assert message.startswith("child exited with code 1 before it was ready")
    assert "about to fail" in message and "fatal: no config" in message
    assert process.returncode == 1


async def test_exit_while_probing_fails_with_the_last_lines(tmp_path: Path) -> None:
    """A child that exits while its probe says no fails start() before the timeout."""

    async def never() -> bool:
        return False

    process = _process(tmp_path, DIES_AT_ONCE)
    with pytest.raises(ProcessFailed, match=r"(?s)exited with code 1.*fatal: no config"):
        await process.start(ready_probe=never, timeout=60)


async def test_not_ready_in_time_is_killed(tmp_path: Path) -> None:
    """A child that never becomes ready is killed and start() says it was not ready."""

    async def never() -> bool:
        return False

    process = _process(tmp_path, READY_FILE, str(tmp_path / "ignored"))
    with pytest.raises(ProcessFailed, match="child was not ready after 1s"):
        await process.start(ready_probe=never, timeout=1)
    assert not process.running
    assert process.returncode == -signal.SIGKILL


async def test_stop_kills_a_child_that_ignores_sigterm(tmp_path: Path) -> None:
    """stop() escalates to SIGKILL when SIGTERM does not end the child within the timeout."""
    process = _process(tmp_path, IGNORES_SIGTERM)
    await process.start(timeout=30)
    assert await process.stop(timeout=0.5) == -signal.SIGKILL
    assert not process.running


async def test_wait_returns_the_exit_code_of_a_child_that_ends(tmp_path: Path) -> None:
    """wait() returns when the child exits on its own, with its exit code."""
    process = _process(tmp_path, READY_FILE, str(tmp_path / "ready"))

    async def probe() -> bool:
        return (tmp_path / "ready").exists()

    await process.start(ready_probe=probe, timeout=30)
    assert process.pid is not None
    os.kill(process.pid, signal.SIGTERM)
    assert await process.wait() == 0
    assert process.returncode == 0 and not process.running


async def test_send_signal_after_exit_is_harmless(tmp_path: Path) -> None:
    """Signalling a child that already exited does nothing and raises nothing."""
    process = _process(tmp_path, DIES_AT_ONCE)
    with pytest.raises(ProcessFailed):
        await process.start(timeout=30)
    process.send_signal(signal.SIGTERM)
    assert await process.stop(timeout=1) == 1


async def test_a_missing_program_is_reported(tmp_path: Path) -> None:
    """A program that does not exist fails start() naming the child."""
    process = ManagedProcess(
        "ghost", [str(tmp_path / "no-such-program")], env={}, log_dir=tmp_path / "logs"
    )
    with pytest.raises(ProcessFailed, match="ghost could not be started"):
        await process.start(timeout=5)


async def test_wait_before_start_is_an_error(tmp_path: Path) -> None:
    """wait() on a child that was never started fails clearly."""
    with pytest.raises(RuntimeError, match="was not started"):
        await _process(tmp_path, READY_FILE).wait()


def test_child_environment_drops_project_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Project settings of this process do not leak into children; overrides and PATH do."""
    monkeypatch.setenv("DISCORD_TOKEN", "real-token")
    monkeypatch.setenv("FACEIT_API_KEY", "real-key")
    env = child_environment({"VOICE_GRPC_PORT": "0"})
    assert "DISCORD_TOKEN" not in env and "FACEIT_API_KEY" not in env
    assert env["VOICE_GRPC_PORT"] == "0"
    assert env["PATH"] == os.environ["PATH"]
    assert env["PYTHONUNBUFFERED"] == "1"


OVER_LONG_LINE = """
import sys
sys.stdout.write("before\\n" + "A" * (3 << 20) + "\\nafter\\n")
sys.stdout.flush()
"""


async def test_an_over_long_output_line_is_dropped_whole(tmp_path: Path) -> None:
    """A line longer than the limit is replaced by one notice; none of its bytes is copied."""
    lines: list[str] = []
    process = _process(tmp_path, OVER_LONG_LINE, lines=lines)
    await process.start(ready_probe=_always_ready, timeout=30)
    assert await process.wait() == 0
    assert lines == ["before", "[child: an over-long output line was dropped]", "after"]
    assert process.log_path.read_text().splitlines() == lines


async def _always_ready() -> bool:
    return True


def test_a_child_in_another_directory_imports_the_source_tree(tmp_path: Path) -> None:
    """With child_environment a child started elsewhere imports the sandboxes and dev tools."""
    result = subprocess.run(
        [sys.executable, "-c", "import devtools.processes, sandbox.discord, bench"],
        cwd=tmp_path,
        env=child_environment({}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
