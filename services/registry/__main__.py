"""`python -m services.registry`: run the registry gRPC service until SIGTERM/SIGINT."""

from __future__ import annotations

from services.kit.collector import settle_after_startup
from services.kit.event_loop import run
from services.kit.logging import setup_logging
from services.kit.settings import load_settings
from services.registry.server import serve
from services.registry.settings import RegistrySettings


def main() -> None:
    """Load and validate settings, set up logging, then serve."""
    settings = load_settings(RegistrySettings)
    setup_logging(settings.log_level_number, service="registry")
    settle_after_startup()
    run(serve(settings))


if __name__ == "__main__":
    main()
