"""The bare reference endpoint is served as ingest is: on the same event loop."""

from __future__ import annotations

from fastapi import FastAPI

from bench.bare_server import bare_config
from services.ingest.http_server import server_config
from tests.services.ingest.harness import ingest_settings


def test_the_bare_endpoint_runs_on_ingests_event_loop() -> None:
    """Both uvicorn configs name uvloop and build their loop with the same factory."""
    ingest = server_config(FastAPI(), ingest_settings("127.0.0.1:1"))
    bare = bare_config("127.0.0.1", 0)
    assert ingest.loop == bare.loop == "uvloop"
    assert ingest.get_loop_factory() is bare.get_loop_factory()
