"""Services browsable by name: describe and health, answered by every server (layer L1, pure).

Every :class:`~tipcrpc.rpc.server.Server` serves, next to its own services:

* the **reflection service** ``"tipcrpc.reflection"`` (type :data:`REFLECTION_TYPE`),
  published at instance 0 with the server's scope, so that
  ``client.call_all("tipcrpc.reflection", "describe")`` reaches every server of the cluster
  (this is how ``tipcrpc ls`` lists services by their string names, as gRPC reflection or
  ``pyro5-nsc list`` do). Its methods:

  - ``describe(service=None)`` — ``{"node", "port", "identity", "status", "services": [...]}``,
    one entry per served service (:func:`describe_service`), or only ``service`` (a name or
    a type number);
  - ``health()`` — ``{"status": "serving" | "draining", "node", "port", "active", "queued",
    "services": [names]}``.

* two **reserved methods on every served type**, so a client that knows only a service's
  name asks a socket that actually serves it:

  - :data:`DESCRIBE` (``"tipcrpc.describe"``) — :func:`describe_service` of that service as
    served by the socket that answered, methods included (their signatures, idempotence,
    importance, streaming). A client calling by name can call this once before its first
    real call to learn which methods may be failed over;
  - :data:`HEALTH` (``"tipcrpc.health"``) — the same answer as ``health()`` above.

All of them are idempotent, of high importance, and plain functions (run inline by the
server: no task). A method name containing a dot cannot come from a ``def``; a service that
registers one of the reserved names itself (``name="tipcrpc.health"``) keeps its own.

A draining server has withdrawn its names, so it is no longer found by name; a call that
still reaches it is refused with ``SHUTTING_DOWN``, which ``tipcrpc ping`` reports as
``draining``.

This module is pure: it reads the server's public state (``address``, ``services``,
``names``, ``scope``, ``draining``, ``statistics()``, ``transport.own_node``) when asked.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, Mapping, Protocol, Sequence, Union

from ..addr import Importance, Scope, ServiceAddr, ServiceRange, SocketAddr, service_type
from .frames import method_flags
from .service import MethodInfo, MethodKind, Service

__all__ = [
    "REFLECTION",
    "REFLECTION_TYPE",
    "DESCRIBE",
    "HEALTH",
    "SERVING",
    "DRAINING",
    "Reflection",
    "describe_method",
    "describe_service",
]

#: Name of the reflection service every server publishes.
REFLECTION = "tipcrpc.reflection"
#: Its TIPC type (the hash of :data:`REFLECTION`).
REFLECTION_TYPE = service_type(REFLECTION)
#: Reserved method answered on every served type: describe this service.
DESCRIBE = "tipcrpc.describe"
#: Reserved method answered on every served type: the server's health.
HEALTH = "tipcrpc.health"
#: Health states.
SERVING, DRAINING = "serving", "draining"

Name = Union[ServiceAddr, ServiceRange]


class _TableView(Protocol):
    """What :meth:`Reflection.install` changes in a serve table."""

    methods: dict[int, dict[str, MethodInfo]]
    flags: dict[MethodInfo, int]


class _ServerView(Protocol):
    """What reflection reads of a server (all public)."""

    services: list[Service[Any]]
    names: list[Name]
    scope: Scope

    @property
    def address(self) -> SocketAddr: ...

    @property
    def draining(self) -> bool: ...

    @property
    def transport(self) -> Any: ...

    def statistics(self) -> Mapping[str, Any]: ...


def describe_method(info: MethodInfo) -> dict[str, Any]:
    """Plain data describing one method: ``name``, ``signature`` (as written, e.g.
    ``"(a: int, b: int) -> int"``), ``kind``, ``streaming``, ``idempotent``, ``importance``
    (``"low"``..``"critical"``) and ``doc`` (its first line, or ``None``)."""
    doc = info.doc.strip().splitlines()[0] if info.doc and info.doc.strip() else None
    return {
        "name": info.name,
        "signature": info.signature_text,
        "kind": info.kind.value,
        "streaming": info.kind.streaming,
        "idempotent": info.idempotent,
        "importance": info.importance.name.lower(),
        "doc": doc,
    }


def describe_service(svc: Service[Any], names: Sequence[Name], scope: Scope) -> dict[str, Any]:
    """Plain data describing a served service: ``service`` (its name), ``type``,
    ``instances`` (``[[lower, upper], ...]`` of the ``names`` with its type), ``scope``
    and ``methods`` (sorted by name, see :func:`describe_method`)."""
    ranges = []
    for n in names:
        if n.type == svc.type:
            r = n if isinstance(n, ServiceRange) else ServiceRange.of(n.type, n.instance)
            ranges.append([r.lower, r.upper])
    return {
        "service": svc.name,
        "type": svc.type,
        "instances": ranges,
        "scope": Scope(scope).name.lower(),
        "methods": [describe_method(info) for _n, info in sorted(svc.methods.items())],
    }


def _info(name: str, func: Callable[..., Any], doc: str) -> MethodInfo:
    sig = inspect.signature(func)
    return MethodInfo(name=name, func=func, kind=MethodKind.SYNC, idempotent=True, importance=Importance.HIGH,
                      signature=sig, doc=doc, arity=None)  # fmt: skip


class Reflection:
    """The reflection service and the reserved methods of one server (see the module docstring).

    The server adds :attr:`service` to what it serves and :attr:`name` to what it publishes,
    then calls :meth:`install` with its serve table. :attr:`labels` maps every method it
    serves to ``(service name, method name)`` (the per-method metrics' keys).
    """

    def __init__(self, server: _ServerView) -> None:
        self._server = server
        self.labels: dict[MethodInfo, tuple[str, str]] = {}
        svc = self.service = Service(REFLECTION)
        self.name: Name = ServiceRange.of(REFLECTION_TYPE, 0)

        @svc.method(idempotent=True, importance="high")
        def describe(service: str | int | None = None) -> dict[str, Any]:
            """Every service this server serves (or only ``service``), with their methods."""
            return self.describe(service)

        @svc.method(idempotent=True, importance="high")
        def health() -> dict[str, Any]:
            """serving or draining, with the calls in progress."""
            return self.health()

    def _user_services(self) -> list[Service[Any]]:
        return [s for s in self._server.services if s.type != REFLECTION_TYPE]

    def _where(self) -> dict[str, Any]:
        server = self._server
        addr = server.address
        try:
            identity = server.transport.own_node.identity
        except Exception:  # a transport not open (or a fake without identity): leave it out
            identity = None
        return {"node": addr.node, "port": addr.port, "identity": identity,
                "status": DRAINING if server.draining else SERVING}  # fmt: skip

    def describe(self, service: str | int | None = None) -> dict[str, Any]:
        """The answer of ``tipcrpc.reflection.describe``."""
        server = self._server
        out = self._where()
        out["services"] = [
            describe_service(s, server.names, server.scope)
            for s in self._user_services()
            if service is None or service == s.name or service == s.type
        ]
        return out

    def health(self) -> dict[str, Any]:
        """The answer of ``health`` and of :data:`HEALTH` on any served type."""
        stats = self._server.statistics()
        out = self._where()
        out.update(active=stats.get("active", 0), queued=stats.get("queued", 0),
                   services=[s.name for s in self._user_services()])  # fmt: skip
        return out

    def install(self, table: _TableView) -> None:
        """Add :data:`DESCRIBE` and :data:`HEALTH` to every served type of ``table`` (a
        :class:`~tipcrpc.rpc.serve_table.ServeTable`: ``methods`` by type, ``flags`` by
        method) and fill :attr:`labels`."""
        for svc in self._server.services:
            methods = table.methods.setdefault(svc.type, dict(svc.methods))
            methods.update(self.reserved(svc))
            for info in methods.values():
                if info not in table.flags:
                    table.flags[info] = method_flags(info.idempotent, info.importance)
                self.labels[info] = (svc.name, info.name)

    def reserved(self, svc: Service[Any]) -> dict[str, MethodInfo]:
        """:data:`DESCRIBE` and :data:`HEALTH` for ``svc`` (minus names it defines itself),
        to add to its methods on this server."""
        if svc.type == REFLECTION_TYPE:
            return {}
        server = self._server

        def describe_this() -> dict[str, Any]:
            out = self._where()
            out.update(describe_service(svc, server.names, server.scope))
            return out

        found = {DESCRIBE: _info(DESCRIBE, describe_this, f"Describe {svc.name} as served here."),
                 HEALTH: _info(HEALTH, self.health, "serving or draining, with the calls in progress.")}  # fmt: skip
        return {k: v for k, v in found.items() if k not in svc}

