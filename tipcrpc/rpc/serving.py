"""One call being served (layer L4): its state and, for streaming methods, the producer.

Split from :mod:`tipcrpc.rpc.server`, which owns dispatch, limits, deadlines and drain; this
module owns what happens *inside* one accepted call once it runs as a task.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable

from ..addr import Importance, SocketAddr
from ..codec import Codec
from ..errors import CodecError
from .frames import encode_stream_end, encode_stream_item
from .service import MethodInfo, MethodKind

__all__ = ["Active", "produce_stream"]


class Active:
    """A call being served or waiting in the backlog (slots: one per call)."""

    __slots__ = ("seq", "source", "cid", "info", "args", "kwargs", "oneway", "task", "reason", "credit", "waiter")

    def __init__(self, seq: int, source: SocketAddr, cid: int, info: MethodInfo, args: list[Any],
                 kwargs: dict[str, Any], oneway: bool, credit: int) -> None:  # fmt: skip
        self.seq = seq
        self.source = source
        self.cid = cid
        self.info = info
        self.args = args
        self.kwargs = kwargs
        self.oneway = oneway
        self.task: asyncio.Task[None] | None = None
        self.reason: int | None = None
        self.credit = credit
        self.waiter: asyncio.Future[None] | None = None


async def produce_stream(
    a: Active,
    codec: Codec,
    send: Callable[[SocketAddr, bytes, Importance], None],
    fail: Callable[[CodecError], None],
    end_flags: int,
) -> bool:
    """Run a streaming method, sending one STREAM_ITEM per item within the client's credit.

    Waits on ``a.waiter`` while the credit is exhausted (the server sets it when a
    STREAM_CREDIT arrives). Returns ``True`` after STREAM_END was sent, ``False`` if an item
    could not be encoded (``fail`` has answered the call). The generator is always closed.
    """
    loop = asyncio.get_running_loop()
    imp = a.info.importance
    gen = a.info.func(*a.args, **a.kwargs)
    is_async = a.info.kind is MethodKind.ASYNC_STREAM
    seq = 0
    try:
        while True:
            try:
                item = await gen.__anext__() if is_async else next(gen)
            except (StopAsyncIteration, StopIteration):
                break
            while a.credit <= 0:
                a.waiter = loop.create_future()
                try:
                    await a.waiter
                finally:
                    a.waiter = None
            a.credit -= 1
            try:
                frame = encode_stream_item(codec, a.cid, seq, item)
            except CodecError as exc:
                fail(exc)
                return False
            send(a.source, frame, imp)
            seq += 1
        send(a.source, encode_stream_end(a.cid, seq, end_flags), imp)
        return True
    finally:
        if is_async:
            await gen.aclose()
        else:
            gen.close()
