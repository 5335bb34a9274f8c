"""What an RPC client reports about its calls: per-method metrics and failover log lines (L4).

The client shell (:class:`tipcrpc.rpc.client.Client`) keeps one :class:`ClientMetrics` as
``client.metrics`` and hands it, from one place, every outbox of its call table that
finished or moved calls (:meth:`ClientMetrics.observe`). That is the only hook: per call it
costs one clock read and one :meth:`~tipcrpc.metrics.Metrics.record`.

* Metrics: per ``(service, method)`` the calls that finished, the errors by exception name
  (``DeadlineExceeded``, ``PeerLost``, ``RemoteException``...) and the latency, from the
  moment the call was sent to the moment it finished (failovers included). They appear in
  ``client.statistics()["methods"]`` and in the Prometheus exporter
  (``start_exporter([client])``) as ``tipcrpc_client_*``. Notifications are not in them
  (nothing answers a notification: see ``statistics()["notifications"]``), nor are calls
  refused before they were sent (no instance published: the caller gets
  :class:`~tipcrpc.errors.ServiceUnreachable` at once).
* Failovers: an INFO line on the ``tipcrpc.client`` logger when calls move to another
  instance — which calls, from which socket to which, and why. A node that goes down with
  thousands of calls in flight gives one line, and at most one line a second is written
  (:data:`FAILOVER_LOG_INTERVAL_S`); the next line counts the moves left out.
"""

from __future__ import annotations

import logging
from typing import Any, Iterable, Mapping

from .addr import SocketAddr
from .logs import Throttle
from .metrics import DEFAULT_BUCKETS, Metrics
from .rpc.call_table import ONEWAY, Outbox
from .rpc.service import lookup_service

__all__ = ["ClientMetrics", "FAILOVER_LOG_INTERVAL_S"]

log = logging.getLogger("tipcrpc.client")

#: At most one failover line per this many seconds (a flood of returned calls, a flapping node).
FAILOVER_LOG_INTERVAL_S = 1.0


class ClientMetrics(Metrics):
    """A client's per-method metrics (role ``"client"``), keyed by service *type* and method
    while recording (no name lookup per call) and named when read.

    ``meta`` is the client's method cache, ``{(service ref, method): (type, name, ...)}``,
    read (never written) to name the types; a type only known by number keeps its number.
    """

    def __init__(self, meta: Mapping[Any, tuple[Any, ...]], buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__("client", buckets)
        self._meta = meta
        self._throttle = Throttle(FAILOVER_LOG_INTERVAL_S)
        self._moves_held = 0

    def label(self, service: Any) -> str:
        """The name the client called type ``service`` by (a name beats a bare number)."""
        best = None
        for meta in list(self._meta.values()):
            if meta[0] == service and (best is None or best.isdigit()):
                best = meta[1]
        if best is None or best.isdigit():
            svc = lookup_service(service)
            if svc is not None:
                return svc.name
        return best if best is not None else str(service)

    def observe(self, out: Outbox, now: float) -> None:
        """The call table's outbox finished calls (``out.done``, recorded; the shell still
        completes them) or moved some (``out.moved``, logged and emptied here). ``now`` is
        the loop's clock, the one the calls were started with."""
        methods = self._methods
        for call, _value, error in out.done:
            if call.kind != ONEWAY:
                key = (call.type, call.method)
                mm = methods.get(key) or self.method(key)
                mm.add(now - call.started, None if error is None else error.__class__.__name__)
        if out.moved:
            moved, out.moved = out.moved, []
            self._log_moves(moved, now)

    def _log_moves(self, moved: list[tuple[Any, SocketAddr | None, SocketAddr, BaseException | None]],
                   now: float) -> None:  # fmt: skip
        held = self._throttle.allow(now)
        if held is None or not log.isEnabledFor(logging.INFO):
            self._moves_held += len(moved)
            return
        # one line for the batch: grouped by method, origin and cause, destinations listed
        groups: dict[tuple[int, str, SocketAddr | None, str], tuple[int, set[SocketAddr]]] = {}
        for call, src, dest, refusal in moved:
            key = (call.type, call.method, src, _cause(refusal))
            n, dests = groups.get(key, (0, set()))
            dests.add(dest)
            groups[key] = (n + 1, dests)
        parts = []
        for (stype, method, src, cause), (n, dests) in groups.items():
            to = ", ".join(str(d) for d in sorted(dests))
            parts.append(f"{n} call{'s' if n > 1 else ''} of {self.label(stype)}.{method} from {src} to {to} ({cause})")
        more, self._moves_held = self._moves_held, 0
        tail = f" ({more} earlier moves not logged)" if more else ""
        log.info("failover: %s%s", "; ".join(parts), tail)


def _cause(refusal: BaseException | None) -> str:
    if refusal is None:
        return "its instance was lost or withdrawn"
    status = getattr(refusal, "status", None)
    what = status.name.lower() if status is not None and hasattr(status, "name") else refusal.__class__.__name__
    return f"refused: {what}"
