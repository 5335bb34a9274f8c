"""Is kernel TIPC usable here? A cheap, synchronous check with actionable answers.

``probe()`` opens (and closes) one ``AF_TIPC`` socket — in ``netns`` if given — and reads
the node's address and identity from it. It needs no netlink and no event loop, so
``tipcrpc.connect()`` can call it to pick a transport.

* ``socket(AF_TIPC)`` fails with ``EAFNOSUPPORT`` → not available: the ``tipc`` module is
  not loaded (it is not auto-loaded by ``socket()``).
* Available but the node address is 0 → no bearer is enabled (the kernel assigns the
  address when the first bearer comes up). A single node still works for local traffic;
  the diagnostics say how to join a cluster.
"""

from __future__ import annotations

import errno
import fcntl
import socket
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional, Tuple

from ...errors import TransportUnavailable
from . import netns as _netns
from . import wire

__all__ = ["KernelProbe", "probe", "require", "own_node_of", "node_identities", "MODULE_HINT", "BEARER_HINT"]

MODULE_HINT = (
    "kernel TIPC module not loaded: run `modprobe tipc`; to load it at boot add `tipc` to "
    "/etc/modules-load.d/tipc.conf; or use transport='user'"
)
BEARER_HINT = (
    "no TIPC bearer is enabled on this node: it works for local traffic only. To join a cluster "
    "enable one, e.g. `tipc bearer enable media udp name b1 localip <this host's IP>` (UDP, "
    "port 6118) or `tipc bearer enable media eth device <ifname>`, or from Python "
    "`tipcrpc.transport.kernel.netlink.TipcNetlink().enable_bearer('udp:b1', localip=...)`"
)


@dataclass(frozen=True)
class KernelProbe:
    """Outcome of :func:`probe`."""

    available: bool
    reason: str = ""  #: why not available (actionable)
    addr: int = 0  #: this node's 32-bit address (0: no bearer yet)
    identity: str = ""  #: this node's identity ("" if never set and no bearer)
    diagnostics: List[str] = field(default_factory=list)  #: usable, but worth knowing


def node_identities(addrs: Iterable[int], netns: Optional[str] = None) -> Dict[int, str]:
    """The identities of nodes by 32-bit address, as ``tipc`` prints them (``SIOCGETNODEID``
    on a TIPC socket, which knows this node and every peer it has seen); unknown ones are
    left out."""
    out: Dict[int, str] = {}
    with _netns.create_socket(netns, wire.AF_TIPC, socket.SOCK_RDM) as sock:
        for addr in set(addrs):
            try:
                res = fcntl.ioctl(sock.fileno(), wire.SIOCGETNODEID, wire.NODEID_REQ.pack(addr, b""))
            except OSError:
                continue  # EADDRNOTAVAIL: a node this one does not know
            out[addr] = wire.nodeid_to_identity(wire.NODEID_REQ.unpack(res)[1])
    return out


def own_node_of(sock: socket.socket) -> Tuple[int, str]:
    """``(address, identity)`` of the node a TIPC socket lives on.

    The address comes from ``getsockname()`` (the kernel's current own address); the
    identity from the ``SIOCGETNODEID`` ioctl on that address.
    """
    addr = wire.socket_addr_from(sock.getsockname()).node
    identity = ""
    try:
        req = wire.NODEID_REQ.pack(addr, b"")
        res = fcntl.ioctl(sock.fileno(), wire.SIOCGETNODEID, req)
        identity = wire.nodeid_to_identity(wire.NODEID_REQ.unpack(res)[1])
    except OSError:
        pass  # EADDRNOTAVAIL on kernels that do not know their own id yet
    return addr, identity


def probe(netns: Optional[str] = None) -> KernelProbe:
    """Check whether kernel TIPC can be used (in ``netns``, if given)."""
    try:
        sock = _netns.create_socket(netns, wire.AF_TIPC, socket.SOCK_RDM)
    except TransportUnavailable as exc:
        return KernelProbe(False, str(exc))
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT, errno.ESOCKTNOSUPPORT):
            return KernelProbe(False, MODULE_HINT)
        if exc.errno in (errno.EPERM, errno.EACCES):
            return KernelProbe(False, f"AF_TIPC sockets are not permitted here ({exc.strerror}); "
                                      "or use transport='user'")
        return KernelProbe(False, f"cannot open an AF_TIPC socket: {exc}; or use transport='user'")
    with sock:
        addr, identity = own_node_of(sock)
    diagnostics = [] if addr else [BEARER_HINT]
    return KernelProbe(True, "", addr, identity, diagnostics)


def require(netns: Optional[str] = None) -> KernelProbe:
    """Like :func:`probe`, but raise :class:`~tipcrpc.errors.TransportUnavailable` if unusable."""
    result = probe(netns)
    if not result.available:
        raise TransportUnavailable(result.reason)
    return result
