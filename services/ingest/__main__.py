"""`python -m services.ingest`: the webhook receiver (uvicorn) plus IngestService gRPC."""

from __future__ import annotations

import uvicorn

from services.ingest.app import IngestDeps, create_app
from services.ingest.settings import IngestSettings
from services.kit.embedded_postgres import resolve_database_url
from services.kit.logging import setup_logging
from services.kit.settings import load_settings


def main() -> None:
    """Load settings, set up logging, find the database, then serve HTTP and gRPC until a signal."""
    settings = load_settings(IngestSettings)
    setup_logging(settings.log_level_number, service="ingest")
    database_url = resolve_database_url(settings)
    app = create_app(settings, IngestDeps(database_url=database_url))
    config = uvicorn.Config(
        app,
        host=settings.ingest_http_host,
        port=settings.ingest_http_port,
        log_config=None,
        lifespan="on",
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
