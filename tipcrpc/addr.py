"""TIPC addressing vocabulary: service addresses, ranges, socket addresses, scopes.

TIPC addresses *services*, not hosts: a service address is a pair ``{type, instance}``
of unsigned 32-bit integers, a service range ``{type, lower, upper}`` covers a block of
instances, and a socket address ``{node, port}`` names exactly one socket in the cluster.
Types 0..63 are reserved by TIPC (0 = node state, 1 = topology server, 2 = link state).

String service names map onto types with :func:`service_type` (a stable hash), so two
processes that agree on a name agree on a type without any registry.
"""

from __future__ import annotations

import enum
import hashlib
from dataclasses import dataclass
from typing import NamedTuple

from .errors import AddressError

__all__ = [
    "U32_MAX",
    "RESERVED_TYPES",
    "NODE_STATE",
    "TOP_SRV",
    "LINK_STATE",
    "Scope",
    "Importance",
    "ServiceAddr",
    "ServiceRange",
    "SocketAddr",
    "NodeInfo",
    "service_type",
    "node_addr_from_id",
    "TIPC_UDP_PORT",
]

U32_MAX = 0xFFFF_FFFF
RESERVED_TYPES = 64  #: types below this are TIPC's own and cannot be published by users
NODE_STATE = 0  #: type under which every node publishes its own address (node up/down)
TOP_SRV = 1  #: the topology server's service type
LINK_STATE = 2  #: type under which working links are published (link up/down)
TIPC_UDP_PORT = 6118  #: IANA port of TIPC's UDP bearer (discovery, and the default bearer port)


def _check_u32(what: str, value: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= U32_MAX:
        raise AddressError(f"{what} must be an integer in 0..{U32_MAX}, got {value!r}")
    return value


class Scope(enum.IntEnum):
    """Visibility of a publication (values as in ``linux/tipc.h``)."""

    CLUSTER = 2  #: distributed to every node of the cluster
    NODE = 3  #: visible on the publishing node only


class Importance(enum.IntEnum):
    """Message importance; TIPC grants higher levels a larger receive budget."""

    LOW = 0
    MEDIUM = 1
    HIGH = 2
    CRITICAL = 3


@dataclass(frozen=True, slots=True)
class ServiceAddr:
    """One service instance ``{type, instance}``; sending to it is anycast."""

    type: int
    instance: int

    def __post_init__(self) -> None:
        _check_u32("service type", self.type)
        _check_u32("service instance", self.instance)

    def as_range(self) -> ServiceRange:
        """The singleton range ``{type, instance, instance}``."""
        return ServiceRange(self.type, self.instance, self.instance)

    def __str__(self) -> str:
        return f"{{{self.type},{self.instance}}}"


@dataclass(frozen=True, slots=True)
class ServiceRange:
    """A block of instances ``{type, lower, upper}`` (inclusive); sending to it is multicast."""

    type: int
    lower: int
    upper: int

    def __post_init__(self) -> None:
        _check_u32("service type", self.type)
        _check_u32("range lower bound", self.lower)
        _check_u32("range upper bound", self.upper)
        if self.lower > self.upper:
            raise AddressError(f"range lower bound {self.lower} exceeds upper bound {self.upper}")

    @classmethod
    def of(cls, type: int, instances: range | int | None = None) -> ServiceRange:
        """Build from a Python ``range`` (step 1), a single instance, or ``None`` = all instances."""
        if instances is None:
            return cls(type, 0, U32_MAX)
        if isinstance(instances, int):
            return cls(type, instances, instances)
        if instances.step != 1 or len(instances) == 0:
            raise AddressError(f"instance ranges must be non-empty with step 1, got {instances!r}")
        return cls(type, instances.start, instances.stop - 1)

    def contains(self, instance: int) -> bool:
        return self.lower <= instance <= self.upper

    def overlaps(self, other: ServiceRange) -> bool:
        return self.type == other.type and self.lower <= other.upper and other.lower <= self.upper

    def __str__(self) -> str:
        return f"{{{self.type},{self.lower},{self.upper}}}"


class _SocketAddrFields(NamedTuple):
    node: int
    port: int


class SocketAddr(_SocketAddrFields):
    """Exactly one socket: ``{node, port}`` (the kernel calls the port a *reference*).

    A tuple underneath: hashing and comparing — done several times per message, as a dict
    key of every table that tracks a peer socket — run in C.
    """

    __slots__ = ()

    def __new__(cls, node: int, port: int) -> SocketAddr:
        if node.__class__ is not int or port.__class__ is not int or not (0 <= node <= U32_MAX and 0 <= port <= U32_MAX):
            _check_u32("node address", node)
            _check_u32("port", port)
        return tuple.__new__(cls, (node, port))

    def __str__(self) -> str:
        return f"<{self.node:08x}:{self.port}>"


@dataclass(frozen=True, slots=True)
class NodeInfo:
    """A node's 32-bit address (hash of its identity) and its identity string."""

    addr: int
    identity: str

    def __str__(self) -> str:
        return f"{self.identity} ({self.addr:08x})"


def check_publishable(name: ServiceAddr | ServiceRange) -> None:
    """Raise :class:`AddressError` if ``name`` uses a type reserved by TIPC."""
    if name.type < RESERVED_TYPES:
        raise AddressError(
            f"service type {name.type} is reserved by TIPC (types 0..{RESERVED_TYPES - 1}); "
            f"use a type >= {RESERVED_TYPES} or a service name"
        )


def service_type(name: str) -> int:
    """Map a service name to a TIPC type in ``[64, 2**32)``.

    The mapping is ``64 + (first 4 bytes of SHA-256(name, UTF-8), big-endian) mod (2**32 - 64)``.
    It is stable across processes, machines and Python versions, so every party derives the
    same type from the same name. Collisions are possible (1 in ~4e9 per pair); pass an
    explicit ``type=`` to :class:`tipcrpc.Service` to avoid one.
    """
    if not isinstance(name, str) or not name:
        raise AddressError(f"a service name must be a non-empty string, got {name!r}")
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return RESERVED_TYPES + int.from_bytes(digest[:4], "big") % (U32_MAX + 1 - RESERVED_TYPES)


def node_addr_from_id(node_id: bytes) -> int:
    """The kernel's ``hash128to32``: XOR of the four big-endian words of a 16-byte node id.

    If the XOR is zero, the kernel falls back to OR-ing the words (``core.h``).
    """
    node_id = node_id.ljust(16, b"\0")[:16]
    words = [int.from_bytes(node_id[i : i + 4], "big") for i in range(0, 16, 4)]
    h = words[0] ^ words[1] ^ words[2] ^ words[3]
    if h == 0:
        h = words[0] | words[1] | words[2] | words[3]
    return h
