"""`python -m services.ingest`: settings, logging, then HTTP and gRPC served until stopped."""

from __future__ import annotations

import sys

from services.ingest.log_filters import DropColorMessage
from services.ingest.server import serve
from services.ingest.settings import IngestSettings
from services.kit.logging import setup_logging
from services.kit.settings import load_settings


def main() -> None:
    """Load settings, set up logging, then serve until a signal; exit with the run's status."""
    settings = load_settings(IngestSettings)
    handler = setup_logging(settings.log_level_number, service="ingest")
    handler.addFilter(DropColorMessage())
    sys.exit(serve(settings))


if __name__ == "__main__":
    main()
