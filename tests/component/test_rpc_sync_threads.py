"""serve(..., sync_handlers="thread"): blocking plain methods run in the thread pool."""

from __future__ import annotations

import asyncio
import threading
from typing import Iterator

import anyio
import pytest

import tipcrpc
from tipcrpc.transport.memory import reset_default_cluster

svc = tipcrpc.Service("test.rpc.syncthreads")
gate = threading.Event()


@svc.method
def wait_for_gate() -> str:
    # Blocks until the test opens the gate: inline, this would stop the event loop for good.
    assert gate.wait(10), "gate never opened"
    return threading.current_thread().name


@svc.method(idempotent=True)
def quick() -> str:
    return threading.current_thread().name


@pytest.fixture(autouse=True)
def fresh_default_cluster() -> Iterator[None]:
    reset_default_cluster()
    gate.clear()
    yield
    gate.set()
    reset_default_cluster()


async def test_a_blocking_sync_handler_does_not_stop_the_others() -> None:
    with anyio.fail_after(10):
        async with tipcrpc.serve(svc, transport="memory", sync_handlers="thread") as server:
            async with tipcrpc.connect("memory") as client:
                blocked = asyncio.create_task(client.options(timeout=10).call(svc, "wait_for_gate"))
                for _ in range(3):  # served while wait_for_gate() holds a pool thread
                    assert await client.options(timeout=5).call(svc, "quick") != threading.main_thread().name
                assert not blocked.done()
                gate.set()
                assert await blocked != threading.main_thread().name
            assert server.statistics()["completed"] == 4


async def test_sync_handlers_option_is_checked() -> None:
    with pytest.raises(tipcrpc.UsageError, match="sync_handlers"):
        async with tipcrpc.serve(svc, transport="memory", sync_handlers="process"):
            pass
