"""tipcrpc: asyncio RPC that addresses services by TIPC name.

::

    calc = tipcrpc.Service("demo.calc")

    @calc.method
    async def add(a: int, b: int) -> int:
        return a + b

    async with tipcrpc.serve(calc, instance=1):
        async with tipcrpc.connect() as client:
            await client.call("demo.calc", "add", 1, 2)
"""

import os as _os

# First: importing fastpath honours TIPCRPC_PURE, before the modules below are loaded.
from .fastpath import compiled
from . import logs as _logs
from .addr import Importance, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr, service_type
from .api import connect, serve
from .codec import register_dataclass, register_ext
from .errors import (
    AddressError,
    ClosedError,
    CodecError,
    DeadlineExceeded,
    FrameTooLarge,
    InvalidArguments,
    KernelError,
    LocalProtocolError,
    MethodNotFound,
    PeerLost,
    ProtocolError,
    RemoteCancelled,
    RemoteException,
    RemoteProtocolError,
    RpcError,
    ServerBusy,
    ServiceUnreachable,
    Status,
    TipcRpcError,
    TransportError,
    TransportUnavailable,
    UsageError,
)
from .events import (
    SNAPSHOT_COMPLETE,
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    ServiceDown,
    ServiceUp,
    SnapshotComplete,
    SubFilter,
    TopologyEvent,
    WatchEvent,
    Withdrawn,
)
from .rpc.client import Caller, Client
from .rpc.context import CallContext, current_call
from .rpc.membership import Policy
from .rpc.options import CallOptions
from .rpc.remote_errors import remote_exception
from .rpc.server import Server
from .rpc.service import Service
from .rpc.stub import CallStream, FanoutResult, Stub, Watch

__version__ = "0.1.0"
"""The package version; pyproject.toml reads it from here (the one place it is written)."""

# The public API. Everything else is reachable through the documented modules
# (tipcrpc.codec, tipcrpc.errors, tipcrpc.events, tipcrpc.addr, tipcrpc.testing, ...).
__all__ = [
    "__version__",
    # addresses (tipcrpc.addr)
    "Importance",
    "NodeInfo",
    "Scope",
    "ServiceAddr",
    "ServiceRange",
    "SocketAddr",
    "service_type",
    # serving and calling
    "CallContext",
    "CallOptions",
    "CallStream",
    "Caller",
    "Client",
    "FanoutResult",
    "Policy",
    "Server",
    "Service",
    "Stub",
    "Watch",
    "connect",
    "current_call",
    "serve",
    # values and remote exceptions
    "register_dataclass",
    "register_ext",
    "remote_exception",
    # errors (tipcrpc.errors)
    "AddressError",
    "ClosedError",
    "CodecError",
    "DeadlineExceeded",
    "FrameTooLarge",
    "InvalidArguments",
    "KernelError",
    "LocalProtocolError",
    "MethodNotFound",
    "PeerLost",
    "ProtocolError",
    "RemoteCancelled",
    "RemoteException",
    "RemoteProtocolError",
    "RpcError",
    "ServerBusy",
    "ServiceUnreachable",
    "Status",
    "TipcRpcError",
    "TransportError",
    "TransportUnavailable",
    "UsageError",
    # events (tipcrpc.events)
    "SNAPSHOT_COMPLETE",
    "LinkDown",
    "LinkUp",
    "NodeDown",
    "NodeUp",
    "Published",
    "ServiceDown",
    "ServiceUp",
    "SnapshotComplete",
    "SubFilter",
    "TopologyEvent",
    "WatchEvent",
    "Withdrawn",
    # the optional compiled fast path (tipcrpc.fastpath)
    "compiled",
]

_logs.configure_from_env(_os.environ)
