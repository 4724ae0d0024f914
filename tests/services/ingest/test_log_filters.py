"""Ingest's log filters: uvicorn's colour copy of a message never reaches a log line."""

from __future__ import annotations

import io
import json
import logging

from services.ingest.log_filters import DropColorMessage
from services.kit.logging import JsonFormatter


def test_color_message_is_dropped_from_json_lines() -> None:
    """A record with uvicorn's `color_message` extra is written without it, other extras kept."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ingest"))
    handler.addFilter(DropColorMessage())
    logger = logging.getLogger("tests.ingest.log_filters")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning(
            "Uvicorn running on %s",
            "http://127.0.0.1:1",
            extra={"color_message": "Uvicorn running on \x1b[1m%s\x1b[0m", "match_id": "m-1"},
        )
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    entry = json.loads(stream.getvalue())
    assert entry["msg"] == "Uvicorn running on http://127.0.0.1:1"
    assert entry["match_id"] == "m-1"
    assert "color_message" not in entry
