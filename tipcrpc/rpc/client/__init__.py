"""The RPC client (layer L4): calls, streams, notifications, fan-out, failover.

Every call is sent straight to one chosen **socket address** (see :mod:`.resolver` and
:mod:`.membership`), so the client always knows which instance holds it. Failover happens
the moment the client learns something, never on a timer:

* the Call (or one of its chunks) comes back undeliverable (``NO_PORT``/``NO_NAME``/
  ``NO_NODE``): it provably never started, so it is re-sent to another instance whatever
  the method; with ``OVERLOAD`` it is re-sent to the same socket after a short backoff;
* the server answers SERVER_BUSY/SHUTTING_DOWN: it never started either — retried elsewhere;
* the node holding it goes down: idempotent calls are re-sent elsewhere, others fail with
  :class:`~tipcrpc.errors.PeerLost`;
* the socket's publication is withdrawn: idempotent calls are re-sent elsewhere (with a
  CANCEL to the old socket); for the others the client PINGs that socket — an undeliverable
  ping means ``PeerLost``, a PONG saying the call is in progress (a graceful drain) means
  keep waiting, probing again every :data:`PROBE_INTERVAL_S`.

A call is sent at most ``instances + 1`` times and never past its deadline. A call made
with ``wait_ready`` that may move but finds no instance it has not tried is parked
(:mod:`.waiting`) and re-sent when a new instance is published, until its deadline. Re-sends reuse
the call id; a late duplicate reply is ignored. Deadlines live in one
:class:`~tipcrpc.rpc.protocol.PendingTable` driven by a single loop timer; a deadline that
passes fails the call with :class:`~tipcrpc.errors.DeadlineExceeded` and sends CANCEL, as
does cancelling the awaiting task. Replies resolve their future directly in the endpoint
callback — no dispatcher task on the hot path.
"""

from .client import Client
from .engine import NOTIFY_RETRY_WINDOW_S, PROBE_INTERVAL_S
from ..stub import FanoutResult

__all__ = ["Client", "FanoutResult", "PROBE_INTERVAL_S", "NOTIFY_RETRY_WINDOW_S"]
