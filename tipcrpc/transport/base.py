"""The Transport contract (DESIGN.md §3): what every transport provides, fakes included.

A transport is one TIPC *node*. Its *endpoints* are like kernel ``SOCK_RDM`` sockets: each
has a unique :class:`SocketAddr`, can publish service addresses/ranges at node or cluster
scope, and sends reliable datagrams of at most :attr:`Transport.max_message` bytes to

* a :class:`ServiceAddr` — anycast: one matching socket, chosen round-robin;
* a :class:`ServiceRange` — multicast: one copy to every socket with an overlapping
  publication;
* a :class:`SocketAddr` — direct.

Received datagrams are pushed to the endpoint's handler as :class:`Delivery`; messages that
could not be delivered come back to the sender's handler as :class:`Returned` (the kernel's
``TIPC_ERRINFO``/``TIPC_RETDATA``), never silence. Sending to a name with no matching
publication raises :class:`~tipcrpc.errors.ServiceUnreachable` at once (the kernel's
``EHOSTUNREACH``).

Topology subscriptions replay the current state, then yield
:data:`~tipcrpc.events.SNAPSHOT_COMPLETE`, then live events.

Ordering guarantee (as TIPC's): datagrams from one endpoint to another arrive in send order,
exactly once, unless the destination socket or node goes away.

This module is pure interface (layer L2): no I/O, no event loop.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from types import TracebackType
from typing import AsyncIterator, Callable, Mapping, Protocol, Union, runtime_checkable

from ..addr import Importance, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr
from ..events import SubFilter, TopologyEvent

__all__ = [
    "Destination",
    "Name",
    "DeliveryFailure",
    "Delivery",
    "Returned",
    "MessageHandler",
    "Endpoint",
    "Subscription",
    "Transport",
    "MAX_MESSAGE",
    "RETURNED_DATA_MAX",
]

#: The kernel's ``TIPC_MAX_USER_MSG_SIZE``: the largest datagram, inclusive.
MAX_MESSAGE = 66_000
#: The kernel returns at most this many bytes of an undeliverable message (``MAX_FORWARD_SIZE``).
RETURNED_DATA_MAX = 1024

Name = Union[ServiceAddr, ServiceRange]
Destination = Union[ServiceAddr, ServiceRange, SocketAddr]


class DeliveryFailure(enum.IntEnum):
    """Why a message came back (the kernel's ``TIPC_ERR_*`` codes).

    A :class:`Returned` always means *provably not delivered*: the destination socket never
    saw the message. Messages whose fate is unknown (sent on a link that failed before the
    peer acknowledged them) are not returned; the NodeDown/LinkDown/Withdrawn events that
    accompany the loss tell the sender instead, as with the kernel.
    """

    NO_NAME = 1  #: no publication matched at the destination node
    NO_PORT = 2  #: the destination socket no longer exists
    NO_NODE = 3  #: the destination node is unreachable
    OVERLOAD = 4  #: the destination socket's receive queue was full


@dataclass(frozen=True, slots=True)
class Delivery:
    """A datagram received by an endpoint.

    ``dest`` is what the sender addressed: the :class:`ServiceAddr` for anycast, the
    :class:`ServiceRange` for multicast, or this endpoint's own :class:`SocketAddr` for
    direct sends (the kernel's ``TIPC_DESTNAME``).
    """

    data: bytes
    source: SocketAddr
    dest: Destination


@dataclass(frozen=True, slots=True)
class Returned:
    """A datagram this endpoint sent that could not be delivered.

    ``data`` may be truncated to :data:`RETURNED_DATA_MAX` bytes (kernel behaviour: put what
    you need to recognise a message in its first bytes). ``dest`` is where it was sent.
    """

    data: bytes
    dest: Destination
    reason: DeliveryFailure


#: Called by the transport, from the event loop (never re-entrantly from inside ``send``),
#: once per received or returned datagram, in arrival order.
MessageHandler = Callable[[Union[Delivery, Returned]], None]


@runtime_checkable
class Endpoint(Protocol):
    """A reliable-datagram socket with a cluster-unique address (kernel: ``SOCK_RDM``)."""

    @property
    def address(self) -> SocketAddr:
        """This endpoint's socket address ``{node, port}``."""
        ...

    async def publish(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Bind ``name``; other nodes see it once distribution completes.

        Raises :class:`~tipcrpc.errors.AddressError` for reserved types (< 64).
        """
        ...

    async def withdraw(self, name: Name, scope: Scope = Scope.CLUSTER) -> None:
        """Unbind a name published earlier with the same scope (no-op if not bound)."""
        ...

    def send(self, dest: Destination, data: bytes, *, importance: Importance = Importance.LOW) -> None:
        """Queue ``data`` (1 to :attr:`Transport.max_message` bytes) for ``dest``; never drops it silently.

        Raises :class:`~tipcrpc.errors.LocalProtocolError` for empty ``data`` (the kernel
        discards empty datagrams without a trace, so no transport accepts them).

        Raises :class:`~tipcrpc.errors.ServiceUnreachable` when no publication matches a
        :class:`ServiceAddr`/:class:`ServiceRange` destination, or when a
        :class:`SocketAddr` destination's node has no working link (kernel: ``EHOSTUNREACH``),
        :class:`~tipcrpc.errors.FrameTooLarge` above :attr:`Transport.max_message`,
        :class:`~tipcrpc.errors.ClosedError` after :meth:`aclose`. Later failures come back
        as :class:`Returned`. Call :meth:`drain` to respect backpressure.

        Multicast copies for a node where no matching socket remains by the time they
        arrive are dropped without a :class:`Returned` (as the kernel does): multicast is a
        fan-out to whoever is published, not a delivery promise to particular sockets.
        """
        ...

    async def drain(self) -> None:
        """Wait until the endpoint's send queue is below its high-water mark."""
        ...

    async def aclose(self) -> None:
        """Withdraw every publication and close; idempotent."""
        ...


@runtime_checkable
class Subscription(Protocol):
    """An async iterator of topology events; close it to cancel the subscription."""

    def __aiter__(self) -> AsyncIterator[TopologyEvent]: ...

    async def __anext__(self) -> TopologyEvent: ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Subscription: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class Transport(Protocol):
    """One TIPC node. Open/close with ``async with transport:``."""

    #: ``"memory"``, ``"kernel"`` or ``"user"``.
    kind: str

    @property
    def own_node(self) -> NodeInfo:
        """This node's 32-bit address and identity (valid once open)."""
        ...

    @property
    def max_message(self) -> int:
        """Largest datagram ``Endpoint.send`` accepts (66 000 on TIPC)."""
        ...

    async def __aenter__(self) -> Transport: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    async def open_endpoint(self, handler: MessageHandler) -> Endpoint:
        """Open a new endpoint whose received/returned datagrams go to ``handler``."""
        ...

    async def subscribe(self, target: ServiceRange, *, filter: SubFilter = SubFilter.PORTS) -> Subscription:
        """Subscribe to publications overlapping ``target``.

        ``target.type == 0`` yields :class:`~tipcrpc.events.NodeUp`/``NodeDown`` (instances
        are node addresses); ``target.type == 2`` yields ``LinkUp``/``LinkDown``; any other type
        yields ``Published``/``Withdrawn``. Each subscription replays current state, then
        :data:`~tipcrpc.events.SNAPSHOT_COMPLETE`, then live events.
        """
        ...

    def statistics(self) -> Mapping[str, int]:
        """Counters (messages/bytes sent and received, returned, ...)."""
        ...
