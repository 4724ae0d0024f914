"""Tests of the log formatters, correlation context and the one-call logging setup."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services.kit.logging import (
    NOISY_LOGGERS,
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    log_context,
    setup_logging,
)


def _record(msg: str = "opened %s", *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("services.voice.x", logging.INFO, __file__, 7, msg, args, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


@pytest.fixture
def restore_root() -> Iterator[None]:
    """Put the root logger and the library loggers back as they were after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    yield
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)
    logging.captureWarnings(False)
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


def test_json_line_has_the_standard_keys_and_extras() -> None:
    """A JSON line carries ts, level, logger, msg (args applied), service and extra fields."""
    line = JsonFormatter("voice").format(_record("opened %s", "m-1", match_id="m-1", n=2))
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "services.voice.x"
    assert entry["msg"] == "opened m-1"
    assert entry["service"] == "voice"
    assert entry["match_id"] == "m-1"
    assert entry["n"] == 2
    assert entry["ts"].endswith("Z") and "T" in entry["ts"]
    assert "\n" not in line


def test_json_line_carries_the_exception_as_exc() -> None:
    """An exception is rendered with its traceback in an `exc` field, on one line."""
    try:
        raise ValueError("bad roster")
    except ValueError:
        record = _record("failed")
        record.exc_info = sys.exc_info()
    line = JsonFormatter("ingest").format(record)
    entry = json.loads(line)
    assert "Traceback" in entry["exc"]
    assert "ValueError: bad roster" in entry["exc"]
    assert "\n" not in line


def test_json_line_survives_values_json_cannot_encode() -> None:
    """Extra values that are not JSON types are written as their str()."""
    entry = json.loads(JsonFormatter("x").format(_record("m", where=Path("/tmp/a"))))
    assert entry["where"] == "/tmp/a"


def test_text_line_is_readable_with_extras_as_key_values() -> None:
    """The terminal line shows level, logger and message, then extra fields as k=v."""
    line = TextFormatter("voice").format(_record("opened %s", "m-1", match_id="m-1"))
    assert " INFO " in line
    assert "services.voice.x: opened m-1" in line
    assert line.endswith(" match_id=m-1")


def test_log_context_adds_fields_inside_the_block_only() -> None:
    """Fields bound with log_context appear on records inside the block, nested ones merged."""
    context = ContextFilter()
    with log_context(match_id="m-1"):
        with log_context(event_id="e-9"):
            inner = _record()
            context.filter(inner)
        middle = _record()
        context.filter(middle)
    outer = _record()
    context.filter(outer)
    assert (inner.match_id, inner.event_id) == ("m-1", "e-9")  # type: ignore[attr-defined]
    assert middle.match_id == "m-1"  # type: ignore[attr-defined]
    assert not hasattr(middle, "event_id")
    assert not hasattr(outer, "match_id")


def test_explicit_extra_wins_over_context() -> None:
    """A field passed with extra= is kept when the context binds the same name."""
    record = _record(match_id="explicit")
    with log_context(match_id="bound"):
        ContextFilter().filter(record)
    assert record.match_id == "explicit"  # type: ignore[attr-defined]


def test_setup_logging_writes_json_lines_with_context(restore_root: None) -> None:
    """After setup, a logger's line is JSON with the service and the bound match_id."""
    stream = io.StringIO()
    setup_logging("INFO", service="ingest", stream=stream)
    with log_context(match_id="m-7"):
        logging.getLogger("services.ingest.inbox").info("stored %s", "e-1", extra={"n": 1})
    logging.getLogger("services.ingest.inbox").debug("hidden below INFO")
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert (entry["service"], entry["msg"], entry["match_id"], entry["n"]) == (
        "ingest",
        "stored e-1",
        "m-7",
        1,
    )


def test_setup_logging_turns_noisy_libraries_down(restore_root: None) -> None:
    """Library chatter below WARNING is dropped; our INFO lines are kept."""
    stream = io.StringIO()
    setup_logging(logging.INFO, service="voice", stream=stream)
    logging.getLogger("discord.gateway").info("heartbeat")
    logging.getLogger("uvicorn.access").info("GET /healthz 200")
    logging.getLogger("discord.gateway").warning("reconnecting")
    lines = [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]
    assert lines == ["reconnecting"]


def test_setup_logging_on_a_terminal_writes_text(restore_root: None) -> None:
    """On a TTY stream the readable format is used instead of JSON."""

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Terminal()
    setup_logging("INFO", service="voice", stream=stream)
    logging.getLogger("services.voice").info("ready")
    assert "services.voice: ready" in stream.getvalue()
    assert not stream.getvalue().startswith("{")
