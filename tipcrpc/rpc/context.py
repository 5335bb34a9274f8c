"""The call context: what a handler can learn about the call it serves (layer L4).

Inside a handler, :func:`current_call` returns a :class:`CallContext`::

    @svc.method
    async def put(key: str, value: str) -> None:
        ctx = tipcrpc.current_call()
        log.info("put from %s, trace %s", ctx.caller, ctx.metadata.get("trace"))
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any, Mapping

from ..addr import SocketAddr
from ..errors import UsageError

if TYPE_CHECKING:
    from .serve_table import Served

__all__ = ["CallContext", "current_call"]

_EMPTY: Mapping[str, Any] = {}


class CallContext:
    """The call a handler is serving (read-only view)."""

    __slots__ = ("_served",)

    def __init__(self, served: Served) -> None:
        self._served = served

    @property
    def instance(self) -> int | None:
        """The instance the call was routed to: the one the client chose (key/instance
        routing), else this server's instance if it publishes exactly one, else ``None``."""
        return self._served.instance

    @property
    def caller(self) -> SocketAddr:
        """The calling client's socket address."""
        return self._served.source

    @property
    def method(self) -> str:
        """The method's name."""
        return self._served.info.name

    @property
    def call_id(self) -> int:
        """The call's 64-bit id (unique per client)."""
        return self._served.cid

    @property
    def deadline(self) -> float | None:
        """Seconds left before the caller's deadline (never negative), or ``None``."""
        d = self._served.deadline
        if d is None:
            return None
        return max(d - asyncio.get_running_loop().time(), 0.0)

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The ``metadata`` option the client sent (empty if none)."""
        return self._served.metadata or _EMPTY

    @property
    def oneway(self) -> bool:
        """True for a notification (nobody receives the result)."""
        return self._served.oneway

    def __repr__(self) -> str:
        return (f"<CallContext {self.method} from {self.caller} instance={self.instance} "
                f"deadline={self.deadline} metadata={dict(self.metadata)}>")  # fmt: skip


# Holds the Served record itself: the CallContext view is built only when asked for.
_current: contextvars.ContextVar[Served | None] = contextvars.ContextVar("tipcrpc_call", default=None)


def current_call() -> CallContext:
    """The :class:`CallContext` of the call the running handler serves.

    Raises :class:`~tipcrpc.errors.UsageError` outside a handler."""
    served = _current.get()
    if served is None:
        raise UsageError("current_call() is only available inside a method handler")
    return CallContext(served)
