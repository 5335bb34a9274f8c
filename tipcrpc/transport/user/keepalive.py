"""Link supervision that does not depend on the event loop (the kernel's does not either).

A kernel TIPC node keeps its links alive whatever its processes do: link STATE messages are
sent from the kernel's own timer. A userspace node sends them from the event loop, so a
handler that blocks its loop (``time.sleep``, CPU-bound work, a blocking library call) used
to silence the node: after link tolerance (1.5 s by default) every peer declared the whole
node dead — its publications withdrawn, every call in flight to it failed with ``PeerLost``.

:class:`Keepalive` is a small daemon thread per userspace node. The loop *beats* (records the
time) whenever it runs the node's timers or link-level traffic; when the beat is older than
one and a half keepalive intervals, the loop is taken to be stalled and the thread sends,
for every established link, the STATE message the link's own timer would have sent: the
link's current session, ``ack`` (= ``rcv_nxt - 1``: what the node has really processed) and
``next_sent``, and the next STATE sequence number. These are plain ints, read under the GIL;
the thread writes nothing else than what building a STATE message writes (the STATE
sequence number and the unacked counter). The peer's link sees a valid STATE and resets its
silence counter, so the node stays up for as long as its *process* lives. Packets the peer
sends meanwhile wait in the node's socket and are processed when the loop resumes; the
stack drains them before it runs its own (late) timers (see ``Stack._on_timer``), so the
node does not in turn declare its peers dead after its own stall.

The thread races with the loop only at the moment the loop resumes, and every outcome of
that race is harmless protocol traffic: two STATE messages with the same sequence number
(the peer drops the second, ``proto_invalid``), or a ``next_sent`` read just before the
loop's packet leaves (the peer may NACK once; the packet is retransmitted).

Limits: a process that is dead (even SIGKILLed) is still detected within link tolerance —
the thread dies with it. A process whose loop stays blocked longer than ``stall_limit``
seconds (default 60) stops being kept alive, so a wedged process does eventually fail over;
``None`` keeps it alive as long as the process exists, like the kernel. A handler that
holds the GIL without releasing it (a C extension that never releases it) starves this
thread too: run such code in a process pool.
"""

from __future__ import annotations

import threading
import time
from typing import Callable, Iterable

from .link import Link
from .media import MediaAddr
from .msg import STATE_MSG

__all__ = ["Keepalive", "DEFAULT_STALL_LIMIT", "keepalive_interval"]

#: Seconds a blocked loop is covered by default; ``None`` = as long as the process lives.
DEFAULT_STALL_LIMIT = 60.0


def keepalive_interval(tolerance_ms: int) -> float:
    """The link timer interval in seconds (``tipc_node_calculate_timer``: tol/4, at most 500 ms)."""
    return min(tolerance_ms // 4, 500) / 1000


class Keepalive:
    """The keepalive thread of one node (see the module docstring).

    ``links()`` returns ``(media address, link)`` for every established link; ``send(dest,
    packet)`` puts a packet on the bearer and must be callable from any thread.
    """

    def __init__(
        self,
        *,
        name: str,
        links: Callable[[], Iterable[tuple[MediaAddr, Link]]],
        send: Callable[[MediaAddr, bytes], None],
        stall_limit: float | None = DEFAULT_STALL_LIMIT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._links = links
        self._send = send
        self._clock = clock
        self.stall_limit = stall_limit
        self.last_beat = clock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.stats = {"keepalive_stalls": 0, "keepalive_sent": 0, "keepalive_longest_stall_ms": 0}
        self._stalled_since: float | None = None

    def beat(self) -> None:
        """Called by the loop whenever it runs: the loop is responsive now."""
        self.last_beat = self._clock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (returns at once; the thread exits at its next wake-up)."""
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        interval = 0.5
        while not self._stop.wait(interval / 2):
            try:
                interval = self.tick()
            except Exception:  # never let a race with the loop kill the thread
                interval = 0.05

    def tick(self) -> float:
        """One wake-up: send keepalives if the loop is stalled; return the link interval."""
        links = list(self._links())
        interval = min((keepalive_interval(link.tolerance_ms) for _m, link in links), default=0.5)
        now = self._clock()
        silent = now - self.last_beat
        if silent <= 1.5 * interval:
            if self._stalled_since is not None:
                self._stalled_since = None
            return interval
        st = self.stats
        if self._stalled_since is None:
            self._stalled_since = self.last_beat
            st["keepalive_stalls"] += 1
        st["keepalive_longest_stall_ms"] = max(st["keepalive_longest_stall_ms"], int(silent * 1000))
        if self.stall_limit is not None and silent > self.stall_limit:
            return interval  # wedged for too long: let the peers fail over
        for media, link in links:
            xmitq: list[bytes] = []
            link.build_proto_msg(STATE_MSG, xmitq)  # nothing if the link is no longer up
            for pkt in xmitq:
                self._send(media, pkt)
                st["keepalive_sent"] += 1
        return interval
