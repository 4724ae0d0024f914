"""The event loop the services run on: uvloop (libuv's), the same in all three.

Against asyncio's own loop it answers a gRPC unary call about 10% sooner, and every hop of a
match's open is such a call or a database round trip (bench/findings.md, Round 5). ingest's
uvicorn is told to use it by name (`UVICORN_LOOP`), and so is the benchmarks' bare endpoint,
so that both sides of the webhook comparison run on the same loop.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

UVICORN_LOOP = "uvloop"
"""uvicorn's name for this loop (its `loop` setting)."""


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run `main` to completion on a new uvloop loop, as `asyncio.run` does on its own."""
    return uvloop.run(main)
