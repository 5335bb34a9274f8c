"""The public entry points: :func:`serve` and :func:`connect`, and transport selection (L5).

``transport=`` accepts:

* ``"auto"`` (default) — the ``TIPCRPC_TRANSPORT`` environment variable if set; otherwise
  ``"kernel"`` when ``AF_TIPC`` sockets can be created here, else ``"user"`` when the
  userspace transport is installed, else ``"memory"``;
* ``"kernel"`` (AF_TIPC), ``"user"`` (a userspace TIPC node over UDP), ``"memory"`` (a node
  of :func:`tipcrpc.transport.memory.default_cluster`, in-process only);
* a :class:`~tipcrpc.transport.base.Transport` object, already open; the caller keeps
  ownership (it is not closed here).

For the string kinds the process shares **one** transport per kind and event loop: it is
opened by the first ``serve()``/``connect()`` that needs it and closed when the last one
exits, so a server and a client in one process meet on the same node.

The shared ``"user"`` transport takes its options from the environment (read when it is
opened), since ``serve()``/``connect()`` cannot pass them: ``TIPCRPC_USER_PEERS``
(comma-separated ``ip[:port]``), ``TIPCRPC_USER_LOCAL_IP``, ``TIPCRPC_USER_PORT``,
``TIPCRPC_NETID`` and ``TIPCRPC_TOLERANCE_MS`` (see :func:`user_options_from_env`).
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import weakref
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Mapping, Union

from .addr import TIPC_UDP_PORT, Scope, ServiceRange
from .errors import AddressError, TransportUnavailable, UsageError
from .rpc.chunks import DEFAULT_MAX_FRAME, DEFAULT_WINDOW
from .rpc.client import Client
from .rpc.membership import Policy, policy_of
from .rpc.server import Server
from .rpc.service import Service
from .transport.base import Transport

__all__ = ["serve", "connect", "TransportSpec", "resolve_transport_kind", "user_options_from_env", "TRANSPORT_KINDS"]

TransportSpec = Union[str, Transport]
TRANSPORT_KINDS = ("kernel", "user", "memory")
ENV_VAR = "TIPCRPC_TRANSPORT"


def _kernel_usable() -> bool:
    try:
        from .transport.kernel import KernelTransport  # noqa: F401
    except ImportError:
        return False
    import socket

    family = getattr(socket, "AF_TIPC", None)
    if family is None:
        return False
    try:
        socket.socket(family, socket.SOCK_RDM).close()
    except OSError:
        return False
    return True


def _user_available() -> bool:
    try:
        from .transport.user import UserTransport  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_transport_kind(spec: str) -> str:
    """Turn ``"auto"`` (or an explicit kind) into ``"kernel"``, ``"user"`` or ``"memory"``."""
    kind = spec.strip().lower()
    source = "transport="
    if kind == "auto":
        env = os.environ.get(ENV_VAR, "").strip().lower()
        if env and env != "auto":
            kind, source = env, f"${ENV_VAR}"
        elif _kernel_usable():
            return "kernel"
        elif _user_available():
            return "user"
        else:
            return "memory"
    if kind not in TRANSPORT_KINDS:
        raise TransportUnavailable(
            f"unknown transport {kind!r} (from {source}); choose one of auto, {', '.join(TRANSPORT_KINDS)}"
        )
    return kind


def _env_ip(var: str, text: str) -> str:
    try:
        return str(ipaddress.IPv4Address(text.strip()))
    except ValueError:
        raise UsageError(f"${var}: {text.strip()!r} is not an IPv4 address") from None


def _env_int(var: str, text: str, lo: int, hi: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise UsageError(f"${var}: {text.strip()!r} is not an integer") from None
    if not lo <= value <= hi:
        raise UsageError(f"${var}: {value} is outside {lo}..{hi}")
    return value


def user_options_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for the shared ``UserTransport``, from the environment.

    ``TIPCRPC_USER_PEERS`` — comma-separated ``ip[:port]`` (port 6118 if omitted): replicast
    peers; ``TIPCRPC_USER_LOCAL_IP`` — the bearer's IPv4 address; ``TIPCRPC_USER_PORT`` —
    its UDP port (1–65535); ``TIPCRPC_NETID`` — the cluster id (1–9999);
    ``TIPCRPC_TOLERANCE_MS`` — link tolerance (50–30000); ``TIPCRPC_USER_IDENTITY`` — the
    node identity (stable across restarts: a restarted process rejoins as the same node);
    ``TIPCRPC_USER_MULTICAST`` — ``1``/``0``: multicast discovery on the bearer's interface
    (default: on for loopback only); ``TIPCRPC_USER_BUNDLING`` — ``1``/``0``: bundle small
    messages sent while a link is busy (default on); ``TIPCRPC_CLUSTER_KEY`` — the cluster key
    (``0x`` + hex, as ``tipc node set key``). Unset or empty variables are left
    to ``UserTransport``'s defaults; a bad value raises :class:`~tipcrpc.errors.UsageError`
    naming the variable.
    """
    env = os.environ if environ is None else environ
    opts: dict[str, Any] = {}
    text = env.get("TIPCRPC_USER_PEERS", "").strip()
    if text:
        peers = []
        for item in (p.strip() for p in text.split(",")):
            if not item:
                continue
            host, sep, port = item.partition(":")
            ip = _env_ip("TIPCRPC_USER_PEERS", host)
            peers.append((ip, _env_int("TIPCRPC_USER_PEERS", port, 1, 65535) if sep else _DEFAULT_UDP_PORT))
        opts["peers"] = peers
    text = env.get("TIPCRPC_USER_LOCAL_IP", "").strip()
    if text:
        opts["local_ip"] = _env_ip("TIPCRPC_USER_LOCAL_IP", text)
    text = env.get("TIPCRPC_USER_IDENTITY", "").strip()
    if text:
        if len(text.encode("utf-8")) > 255:
            raise UsageError("$TIPCRPC_USER_IDENTITY: longer than 255 bytes")
        opts["identity"] = text
    for var, key in (("TIPCRPC_USER_MULTICAST", "multicast"), ("TIPCRPC_USER_BUNDLING", "bundling")):
        text = env.get(var, "").strip().lower()
        if text:
            if text not in ("0", "1", "yes", "no", "true", "false", "on", "off"):
                raise UsageError(f"${var}: {text!r} is not one of 1/0, yes/no, true/false, on/off")
            opts[key] = text in ("1", "yes", "true", "on")
    for var, key, lo, hi in (("TIPCRPC_USER_PORT", "port", 1, 65535), ("TIPCRPC_NETID", "netid", 1, 9999),
                             ("TIPCRPC_TOLERANCE_MS", "tolerance_ms", 50, 30_000)):  # fmt: skip
        text = env.get(var, "").strip()
        if text:
            opts[key] = _env_int(var, text, lo, hi)
    text = env.get("TIPCRPC_CLUSTER_KEY", "").strip()
    if text:
        from .transport.user.crypto import parse_cluster_key

        try:
            opts["cluster_key"] = parse_cluster_key(text)
        except UsageError as e:
            raise UsageError(f"$TIPCRPC_CLUSTER_KEY: {e}") from None
    return opts


#: TIPC's UDP bearer port (the userspace transport's default), for peers given without one.
_DEFAULT_UDP_PORT = TIPC_UDP_PORT


def _make_transport(kind: str) -> Transport:
    if kind == "memory":
        from .transport.memory import default_cluster

        return default_cluster().node()
    try:
        if kind == "kernel":
            from .transport.kernel import KernelTransport

            return KernelTransport()
        from .transport.user import UserTransport

        return UserTransport(**user_options_from_env())
    except ImportError as exc:
        raise TransportUnavailable(
            f"the {kind!r} transport is not available in this installation ({exc}); "
            f"use transport='auto' or another kind"
        ) from exc


class _Shared:
    __slots__ = ("transport", "refs", "opened")

    def __init__(self, transport: Transport, opened: asyncio.Future[None]) -> None:
        self.transport = transport
        self.refs = 1
        self.opened = opened


# event loop -> kind -> shared transport (a transport belongs to one loop)
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Shared]] = weakref.WeakKeyDictionary()


async def _acquire(kind: str) -> Transport:
    loop = asyncio.get_running_loop()
    table = _SHARED.setdefault(loop, {})
    entry = table.get(kind)
    if entry is not None:
        entry.refs += 1
        try:
            await asyncio.shield(entry.opened)
        except BaseException:
            entry.refs -= 1
            raise
        return entry.transport
    transport = _make_transport(kind)
    entry = table[kind] = _Shared(transport, loop.create_future())
    try:
        await transport.__aenter__()
    except BaseException as exc:
        table.pop(kind, None)
        entry.opened.set_exception(exc if isinstance(exc, Exception) else TransportUnavailable(f"opening {kind} was interrupted"))
        entry.opened.exception()  # mark retrieved
        raise
    entry.opened.set_result(None)
    return transport


async def _release(kind: str) -> None:
    loop = asyncio.get_running_loop()
    table = _SHARED.get(loop, {})
    entry = table.get(kind)
    if entry is None:
        return
    entry.refs -= 1
    if entry.refs <= 0:
        del table[kind]
        await entry.transport.__aexit__(None, None, None)


@asynccontextmanager
async def _transport(spec: TransportSpec) -> AsyncIterator[Transport]:
    if not isinstance(spec, str):
        yield spec  # caller-owned
        return
    kind = resolve_transport_kind(spec)
    transport = await _acquire(kind)
    try:
        yield transport
    finally:
        await _release(kind)


def _scope_of(scope: Scope | str) -> Scope:
    if isinstance(scope, str):
        try:
            return Scope[scope.strip().upper()]
        except KeyError:
            raise AddressError(f"scope must be 'cluster' or 'node', got {scope!r}") from None
    try:
        return Scope(scope)
    except ValueError:
        raise AddressError(f"scope must be Scope.CLUSTER or Scope.NODE, got {scope!r}") from None


@asynccontextmanager
async def serve(
    *services: Service[Any],
    instance: int | None = None,
    instances: range | ServiceRange | None = None,
    scope: Scope | str = Scope.CLUSTER,
    transport: TransportSpec = "auto",
    max_concurrency: int = 1024,
    max_queued: int = 8192,
    drain_timeout: float = 10.0,
    max_frame: int = DEFAULT_MAX_FRAME,
    window: int = DEFAULT_WINDOW,
    send_tracebacks: bool = False,
    sync_handlers: str = "inline",
) -> AsyncIterator[Server]:
    """Serve ``services`` from one endpoint until the block exits, then drain and close.

    Every service is published as ``{type, instance}`` (default instance 0) or, with
    ``instances=range(lo, hi)``, as the range ``{type, lo, hi-1}``, at ``scope``
    (``"cluster"`` or ``"node"``). Up to ``max_concurrency`` async handlers run at once, up
    to ``max_queued`` more wait; beyond that calls get ServerBusy. On exit the names are
    withdrawn first, calls in progress get up to ``drain_timeout`` seconds to finish, and
    then the endpoint closes. ``send_tracebacks``: handler exceptions carry their traceback
    text to the caller (``RemoteException.remote_traceback``; off by default: it may reveal
    server internals). Yields the :class:`Server` (``.address``, ``.statistics()``,
    ``.drain()``).

    ``sync_handlers``: ``"inline"`` (default) runs plain ``def`` methods on the event loop —
    fastest, but they must not block; ``"thread"`` runs them in the loop's thread pool, so a
    blocking one (I/O, ``time.sleep``, a library without async API) does not stop the
    others (see the guide, "Blocking handlers").
    """
    if not services:
        raise UsageError("serve() needs at least one Service")
    for svc in services:
        if not isinstance(svc, Service):
            raise TypeError(f"serve() takes Service objects, got {svc!r}")
    if instance is not None and instances is not None:
        raise UsageError("pass either instance= or instances=, not both")
    names: list[ServiceRange] = []
    for svc in services:
        if isinstance(instances, ServiceRange):
            names.append(ServiceRange(svc.type, instances.lower, instances.upper))
        else:
            names.append(ServiceRange.of(svc.type, instances if instances is not None else (instance or 0)))
    sc = _scope_of(scope)
    async with _transport(transport) as t:
        server = Server(t, services, names, scope=sc, max_concurrency=max_concurrency, max_queued=max_queued,
                        drain_timeout=drain_timeout, max_frame=max_frame, window=window,
                        send_tracebacks=send_tracebacks, sync_handlers=sync_handlers)  # fmt: skip
        async with server:
            yield server


@asynccontextmanager
async def connect(
    transport: TransportSpec = "auto",
    *,
    policy: Policy | str = Policy.ROUND_ROBIN,
    default_timeout: float | None = None,
    max_frame: int = DEFAULT_MAX_FRAME,
    window: int = DEFAULT_WINDOW,
) -> AsyncIterator[Client]:
    """A :class:`Client` for the block's duration.

    ``policy``: ``"round_robin"`` (default), ``"local_first"`` or ``"least_outstanding"``;
    ``default_timeout``: seconds for calls that pass no ``timeout``.
    """
    pol = policy_of(policy)
    async with _transport(transport) as t:
        async with Client(t, policy=pol, default_timeout=default_timeout, max_frame=max_frame, window=window) as client:
            yield client
