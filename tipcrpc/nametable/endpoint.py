"""The transport-independent half of an endpoint (a kernel ``SOCK_RDM`` socket), pure.

Every transport's endpoint keeps the same books: its address, whether it is closed, the
names it has bound (with the kernel's publication keys, see :class:`~.bindings.Bindings`),
the argument checks of ``send`` and the rule that a handler that raises must not break the
node that called it. :class:`EndpointBase` holds them; a transport's endpoint adds what
moves data (``send``, ``drain``) and tells the node about bindings through
:meth:`~EndpointBase._bind` / :meth:`~EndpointBase._unbind`.
"""

from __future__ import annotations

from typing import Any, Container, Union

from ..addr import Importance, Scope, ServiceAddr, ServiceRange, SocketAddr
from ..errors import ClosedError, FrameTooLarge, LocalProtocolError
from ..fastpath import mypyc_attr
from .bindings import Bindings

__all__ = ["EndpointBase", "check_payload", "alloc_port", "IMPORTANCES"]

_U32 = 0xFFFF_FFFF
#: The importance values ``send`` accepts.
IMPORTANCES = frozenset(int(i) for i in Importance)


def check_payload(data: Any, limit: int, importance: Any) -> bytes:
    """``data`` as immutable bytes, checked against ``limit``; ``importance`` checked too.

    Raises :class:`LocalProtocolError` for a payload that is not bytes-like or empty, or an
    unknown importance, :class:`FrameTooLarge` above ``limit``. A ``bytearray``/``memoryview`` is
    copied (the caller may reuse its buffer).
    """
    if data.__class__ is not bytes:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        else:
            raise LocalProtocolError(f"data must be bytes-like, got {type(data).__name__}")
    if len(data) > limit:
        raise FrameTooLarge(f"{len(data)}-byte message exceeds the {limit}-byte limit")
    if not data:
        # Kernel parity: tipc_recvmsg() silently discards a message with no data and no
        # error code, so an empty datagram could never arrive anywhere.
        raise LocalProtocolError("data must not be empty (TIPC cannot deliver an empty datagram)")
    if importance not in IMPORTANCES:
        raise LocalProtocolError(f"importance must be one of {sorted(IMPORTANCES)}, got {importance!r}")
    checked: bytes = data
    return checked


def alloc_port(start: int, in_use: Container[int]) -> tuple[int, int]:
    """A free port at or after ``start``, and where the next search starts.

    Like the kernel (``tipc_sk_insert``): ports count up from a random start, wrap around the
    32-bit space, skip 0 and ports in use.
    """
    port = start & _U32 or 1
    while port in in_use:
        port = (port + 1) & _U32 or 1
    return port, (port + 1) & _U32 or 1


# Compiled (./dev build-compiled), it stays open to subclasses in Python (the memory transport).
@mypyc_attr(allow_interpreted_subclasses=True)
class EndpointBase:
    """Address, closed flag, bindings and handler of one endpoint.

    Subclasses implement :meth:`_bind`, :meth:`_unbind` (tell the node's name table) and
    :meth:`_report` (hand a handler's exception to the event loop's exception handler).
    """

    __slots__ = ("_address", "_handler", "_closed", "_bindings")

    def __init__(self, address: SocketAddr, handler: Any) -> None:
        self._address = address
        self._handler = handler
        self._closed = False
        self._bindings = Bindings(address.port)

    # -- what a transport provides -------------------------------------------------------

    def _bind(self, r: ServiceRange, scope: Scope, key: int) -> None:
        raise NotImplementedError

    def _unbind(self, r: ServiceRange, key: int) -> None:
        raise NotImplementedError

    def _report(self, context: dict[str, Any]) -> None:
        raise NotImplementedError

    # -- the Endpoint contract's naming half ---------------------------------------------

    @property
    def address(self) -> SocketAddr:
        """This endpoint's socket address ``{node, port}``."""
        return self._address

    @property
    def closed(self) -> bool:
        """True after ``aclose`` (or when its node closed or crashed)."""
        return self._closed

    @property
    def bindings(self) -> list[tuple[ServiceRange, Scope]]:
        """The names this endpoint has published, in publication order."""
        return self._bindings.names()

    async def publish(self, name: Union[ServiceAddr, ServiceRange], scope: Scope = Scope.CLUSTER) -> None:
        """Bind ``name`` at ``scope`` (a no-op if already bound at that scope).

        Raises :class:`~tipcrpc.errors.AddressError` for a malformed name, a reserved type or
        a bad scope, :class:`ClosedError` after ``aclose``.
        """
        r, scope = Bindings.check(name, scope)
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")
        key = self._bindings.bind(r, scope)
        if key is not None:
            self._bind(r, scope, key)

    async def withdraw(self, name: Union[ServiceAddr, ServiceRange], scope: Scope = Scope.CLUSTER) -> None:
        """Unbind a name published with the same scope (no-op if not bound)."""
        bound = self._bindings.unbind(name, scope)
        if bound is not None:
            self._unbind(bound[0], bound[1])

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"endpoint {self._address} is closed")

    def _release(self) -> bool:
        """Mark closed and withdraw every binding (``tipc_sk_release``); False if already closed."""
        if self._closed:
            return False
        self._closed = True
        for r, _scope, key in self._bindings.take_all():
            self._unbind(r, key)
        return True

    def _vanish(self) -> None:
        """Closed without withdrawing anything (the node crashed or was torn down)."""
        self._closed = True
        self._bindings.take_all()

    def _deliver(self, item: Any) -> None:
        """Run the handler; an exception goes to the event loop's handler, not to the node."""
        try:
            self._handler(item)
        except Exception as exc:  # a broken handler must not break the node
            self._report(
                {"message": f"exception in message handler of endpoint {self._address}", "exception": exc}
            )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._address}{' closed' if self._closed else ''}>"
