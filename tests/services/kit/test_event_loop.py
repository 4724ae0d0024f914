"""The services' event loop: uvloop."""

from __future__ import annotations

import asyncio

import uvloop

from services.kit.event_loop import run


def test_run_drives_a_coroutine_to_its_result_on_uvloop() -> None:
    """`run` returns the coroutine's result, computed on a uvloop loop."""

    async def loop_type() -> type:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop())

    assert run(loop_type()) is uvloop.Loop
