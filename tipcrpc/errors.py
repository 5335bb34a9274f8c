"""The tipcrpc exception tree (DESIGN.md §6).

Every error tipcrpc raises is a :class:`TipcRpcError`. OS errors are mapped to these at the
I/O edge only; cancellation is never wrapped.
"""

from __future__ import annotations

import enum
from typing import Any

__all__ = [
    "TipcRpcError",
    "AddressError",
    "UsageError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "CodecError",
    "FrameTooLarge",
    "TransportError",
    "TransportUnavailable",
    "ServiceUnreachable",
    "PeerLost",
    "KernelError",
    "DeadlineExceeded",
    "ClosedError",
    "Status",
    "RpcError",
    "MethodNotFound",
    "InvalidArguments",
    "RemoteCancelled",
    "RemoteException",
    "ServerBusy",
]


class TipcRpcError(Exception):
    """Base of every error raised by tipcrpc."""


class AddressError(TipcRpcError, ValueError):
    """A malformed address, scope, or a type reserved by TIPC (< 64)."""


class UsageError(TipcRpcError, ValueError):
    """An API was called with a bad value: an unknown option value, a number out of range,
    options that exclude each other. (A value of the wrong type raises ``TypeError``.)"""


class ProtocolError(TipcRpcError):
    """A frame or message violates the tipcrpc or TIPC protocol."""


class LocalProtocolError(ProtocolError):
    """We were asked to produce something the protocol forbids."""


class RemoteProtocolError(ProtocolError):
    """The peer sent something the protocol forbids (malformed, wrong version, ...)."""


class CodecError(ProtocolError):
    """A value could not be encoded or decoded by the msgpack codec."""


class FrameTooLarge(CodecError):
    """A frame or payload exceeds the configured maximum size."""


class TransportError(TipcRpcError):
    """The transport could not carry a message."""


class TransportUnavailable(TransportError):
    """The requested transport cannot be used here; the message says how to fix it."""


class ServiceUnreachable(TransportError):
    """No publication matches the destination (kernel: ``EHOSTUNREACH``)."""


class PeerLost(TransportError):
    """The instance, node or link serving a call was lost while the call was in flight."""


class KernelError(TransportError, OSError):
    """An unexpected error from the kernel; ``errno`` is set."""

    def __init__(self, errno: int, strerror: str, *args: Any) -> None:
        OSError.__init__(self, errno, strerror, *args)


class DeadlineExceeded(TipcRpcError, TimeoutError):
    """The call's deadline passed before a reply arrived."""


class ClosedError(TipcRpcError):
    """The client, server, endpoint or transport is closed."""


class Status(enum.IntEnum):
    """Status codes carried in ``Failure`` frames."""

    UNKNOWN = 1
    METHOD_NOT_FOUND = 2
    INVALID_ARGUMENTS = 3
    CANCELLED = 4
    DEADLINE_EXCEEDED = 5
    APPLICATION_ERROR = 6
    SERVER_BUSY = 7
    PROTOCOL_ERROR = 8
    TOO_LARGE = 9
    SHUTTING_DOWN = 10


class RpcError(TipcRpcError):
    """The server answered a call with a failure.

    Attributes: ``status`` (:class:`Status`), ``message`` (text), ``details`` (msgpack-able
    extra data, e.g. the remote exception's type name).
    """

    status: Status = Status.UNKNOWN

    def __init__(self, message: str = "", *, status: Status | None = None, details: Any = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.details = details


class MethodNotFound(RpcError):
    """The service has no such method (or the service is not served by that instance)."""

    status = Status.METHOD_NOT_FOUND


class InvalidArguments(RpcError):
    """The arguments do not fit the method's signature."""

    status = Status.INVALID_ARGUMENTS


class RemoteCancelled(RpcError):
    """The server cancelled the call (shutdown, deadline, or client cancel)."""

    status = Status.CANCELLED


class ServerBusy(RpcError):
    """The server refused the call because it is at its concurrency limit or draining."""

    status = Status.SERVER_BUSY


class RemoteException(RpcError):
    """The method raised; ``remote_type`` names the exception type on the server.

    Exceptions of allowlisted built-in or registered classes arrive as a subclass of both
    this class and theirs (``except KeyError`` works): see :mod:`tipcrpc.rpc.remote_errors`.
    """

    status = Status.APPLICATION_ERROR

    @property
    def remote_type(self) -> str | None:
        """The exception's type on the server: its registered or module-qualified name."""
        d = self.details
        t = d.get("type") if isinstance(d, dict) else None
        return t if isinstance(t, str) else None

    @property
    def remote_traceback(self) -> str | None:
        """The server's formatted traceback, if the server sends them (``send_tracebacks``)."""
        d = self.details
        t = d.get("traceback") if isinstance(d, dict) else None
        return t if isinstance(t, str) else None
