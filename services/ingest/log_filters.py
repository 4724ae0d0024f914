"""Log filters ingest adds to the kit's handler: uvicorn's terminal-only extras dropped."""

from __future__ import annotations

import logging


class DropColorMessage(logging.Filter):
    """Removes uvicorn's `color_message` extra (msg again, with ANSI colour codes).

    uvicorn passes it for its own coloured formatter; the kit's formatters would otherwise
    print it as one more field of every uvicorn line.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.__dict__.pop("color_message", None)
        return True
