"""The userspace node's log lines: links up/down at INFO, malformed packets rate-limited."""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import anyio
import pytest

from tipcrpc.transport.user import UserTransport


class _Wait(logging.Handler):
    """Collects the ``tipcrpc.user`` records; ``wait(pred)`` returns once one matches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.changed.set()

    async def wait(self, pred: object) -> logging.LogRecord:
        while True:
            for r in self.records:
                if pred(r):  # type: ignore[operator]
                    return r
            self.changed.clear()
            await self.changed.wait()


@pytest.fixture
def user_log() -> _Wait:
    handler = _Wait()
    logger = logging.getLogger("tipcrpc.user")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(old)


def _netid() -> int:
    return 1000 + (os.getpid() * 7919 + 29) % 8999


async def test_link_up_and_down_are_logged_at_info(user_log: _Wait) -> None:
    netid = _netid()
    async with UserTransport(netid=netid, identity="log-a") as a:
        async with UserTransport(netid=netid, identity="log-b") as b:
            with anyio.fail_after(10):
                up = await user_log.wait(lambda r: "link up" in r.getMessage() and f"{b.own_node.addr:08x}" in r.getMessage()
                                         and r.getMessage().startswith(f"node {a.own_node.addr:08x}"))  # fmt: skip
            assert up.levelno == logging.INFO
        with anyio.fail_after(10):
            down = await user_log.wait(lambda r: "link down" in r.getMessage()
                                       and r.getMessage().startswith(f"node {a.own_node.addr:08x}"))  # fmt: skip
        assert down.levelno == logging.INFO and f"{b.own_node.addr:08x}" in down.getMessage()


async def test_malformed_packets_are_counted_and_logged(user_log: _Wait) -> None:
    async with UserTransport(netid=_netid(), identity="log-m", multicast=False, port=0) as t:
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            for _ in range(50):  # shorter than any TIPC header
                tx.sendto(b"junk", t.local_media)
            with anyio.fail_after(15):
                rec = await user_log.wait(lambda r: "malformed" in r.getMessage())
        finally:
            tx.close()
        assert rec.levelno == logging.WARNING
        reported = int(rec.getMessage().split("dropped ", 1)[1].split()[0])
        assert 1 <= reported <= 50 and t.statistics()["malformed"] >= reported
        # the rate limit itself (one line per interval, with the count) is tested in unit/test_metrics.py
