"""`python -m services.voice`: settings, logging, then the bot and the gRPC server until stopped."""

from __future__ import annotations

import logging
import sys

from services.kit.collector import settle_after_startup
from services.kit.event_loop import run
from services.kit.logging import setup_logging
from services.kit.settings import ConfigurationError, load_settings
from services.voice.lease import LeaseLost
from services.voice.server import serve
from services.voice.settings import VoiceSettings
from services.voice.startup import StartupError

logger = logging.getLogger("services.voice")

LEASE_LOST_EXIT = 3
"""The exit status after another replica took the lease over."""


def main() -> int:
    """Entry point; returns the exit status."""
    try:
        settings = load_settings(VoiceSettings)
    except ConfigurationError as error:
        sys.stderr.write(f"voice: {error.message}\n")
        return 2
    setup_logging(settings.log_level_number, service="voice")
    settle_after_startup()
    try:
        run(serve(settings))
    except StartupError as error:
        logger.error("cannot start: %s", error)
        return 1
    except LeaseLost as error:
        # Crash-only: a fresh process starts as a standby (Kubernetes restarts the pod).
        logger.error("stopping: %s; this replica no longer acts", error)
        return LEASE_LOST_EXIT
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
