"""`python -m services.ingest`: the webhook receiver (uvicorn) plus IngestService gRPC."""

from __future__ import annotations

import sys
from types import FrameType

import uvicorn

from services.ingest.app import IngestDeps, create_app, exit_status
from services.ingest.http_server import server_config
from services.ingest.log_filters import DropColorMessage
from services.ingest.settings import IngestSettings
from services.kit.collector import settle_after_startup
from services.kit.embedded_postgres import resolve_database_url
from services.kit.logging import setup_logging
from services.kit.settings import load_settings


class IngestServer(uvicorn.Server):
    """uvicorn, but SIGTERM is a normal stop: exit 0 after the graceful shutdown.

    Plain uvicorn re-raises the signal once shut down, so the process dies of SIGTERM (-15).
    The first signal stops gracefully; a second one skips waiting for open connections.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def main() -> None:
    """Load settings, set up logging, find the database, then serve HTTP and gRPC until a signal."""
    settings = load_settings(IngestSettings)
    handler = setup_logging(settings.log_level_number, service="ingest")
    handler.addFilter(DropColorMessage())
    database_url = resolve_database_url(settings)
    app = create_app(settings, IngestDeps(database_url=database_url))
    config = server_config(app, settings)
    settle_after_startup()
    IngestServer(config).run()
    sys.exit(exit_status(app))


if __name__ == "__main__":
    main()
