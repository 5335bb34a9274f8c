"""Name distribution (mirrors ``net/tipc/name_distr.c``, Linux ≥ 5.10 behaviour).

Every node replicates its *cluster-scope* publications to every other node:

* at link-up, a **bulk** dump of all of them to the new peer (``PUBLICATION`` messages with
  ``bulk``; the last one also carries ``last_bulk`` and the sender's next ``named_seqno``);
* afterwards, **incremental** ``PUBLICATION``/``WITHDRAWAL`` messages, numbered with
  ``named_seqno`` (sent to each peer over its unicast link — the kernel's "replicast" used
  for peers without ``TIPC_NAMED_BCAST``). The kernel sends one item per message; the stack
  here *stages* the changes made in one event-loop turn (:meth:`NameDistributor.stage_publish`,
  :meth:`~NameDistributor.stage_withdraw`) and :meth:`~NameDistributor.flush` packs
  consecutive changes of one kind into as few messages as the MTU allows — a receiving kernel
  applies every item of an incremental message (``tipc_named_rcv`` loops over
  ``msg_data_sz / ITEM_SIZE`` items), so publishing 100 000 names costs ~1 400 messages
  of ~70 items (see ``stack.NAMES_MTU``), not 100 000 packets and their acknowledgements;
* when a peer node goes down, everything it published is purged locally.

Each message carries N × 20-byte ``struct distr_item {be32 type, lower, upper, port, key}``;
the publishing node is the message's ``orignode``. Node-scope publications never leave the
node.

Receiving follows ``tipc_named_dequeue``: bulk (and legacy) messages apply at once; the
``last_bulk`` one opens the incremental stream at its ``named_seqno``; incremental messages
apply strictly in ``named_seqno`` order (early ones wait, old ones are dropped), so reordered
or duplicated input converges to the same table. Re-published or unknown withdrawn items are
ignored, as the kernel does.

Pure (layer L1).
"""

from __future__ import annotations

import struct
from typing import Iterable

from ...addr import Scope
from ...errors import RemoteProtocolError
from .msg import (
    DISTR_ITEM_SIZE,
    INT_H_SIZE,
    NAME_DISTRIBUTOR,
    PUBLICATION,
    WITHDRAWAL,
    Header,
    name_distr_msg,
)
from ...nametable.table import NameTable, Publication

__all__ = [
    "ITEM",
    "encode_item",
    "decode_items",
    "NameDistributor",
    "MAX_DEFERRED",
]

#: ``struct distr_item``: five big-endian u32.
ITEM = struct.Struct(">5I")
assert ITEM.size == DISTR_ITEM_SIZE

#: Incremental messages held per peer while waiting for a gap to fill (bounded memory).
MAX_DEFERRED = 4096
_CLUSTER = int(Scope.CLUSTER)


def encode_item(p: Publication) -> bytes:
    """The 20-byte ``distr_item`` of ``p`` (``publ_to_item``)."""
    return ITEM.pack(p.type, p.lower, p.upper, p.port, p.key)


def decode_items(payload: bytes | memoryview) -> list[tuple[int, int, int, int, int]]:
    """``(type, lower, upper, port, key)`` tuples; a partial trailing item is an error."""
    if len(payload) % DISTR_ITEM_SIZE:
        raise RemoteProtocolError(
            f"name distributor payload of {len(payload)} bytes is not a multiple of {DISTR_ITEM_SIZE}"
        )
    return list(ITEM.iter_unpack(payload))


def _less(a: int, b: int) -> bool:
    """Kernel ``less()`` on 16-bit sequence numbers."""
    d = (b - a) & 0xFFFF
    return d != 0 and d < 0x8000


class _Rx:
    """Per-peer receive state (kernel ``named_rcv_nxt``, ``named_open``, ``namedq``)."""

    __slots__ = ("rcv_nxt", "open", "deferred")

    def __init__(self) -> None:
        self.rcv_nxt = 0
        self.open = False
        # (named_seqno, mtype, orignode, payload) of incremental messages not yet applicable
        self.deferred: list[tuple[int, int, int, bytes]] = []


class NameDistributor:
    """Keeps the local :class:`NameTable` in sync with the cluster.

    The caller (the stack) publishes locally through :meth:`publish`/:meth:`withdraw` and
    sends the returned messages over the links, feeds received ``NAME_DISTRIBUTOR`` messages
    to :meth:`receive`, and calls :meth:`node_up`/:meth:`node_down` on link-up/node loss.
    """

    def __init__(self, table: NameTable) -> None:
        self.table = table
        self.own_node = table.own_node
        # Own cluster-scope publications in publication order (kernel nt->cluster_scope).
        self._cluster: dict[Publication, None] = {}
        # Staged changes not yet in a message, in change order: runs of one message type,
        # each [mtype, its 20-byte items back to back].
        self._staged: list[tuple[int, bytearray]] = []
        self._n_staged = 0
        self.snd_nxt = 0
        self._rx: dict[int, _Rx] = {}
        self.stats = {
            "names_published": 0,
            "names_withdrawn": 0,
            "name_items_applied": 0,
            "name_items_ignored": 0,
            "name_msgs_dropped": 0,
        }

    # -- local publications ----------------------------------------------------------------

    def publish(
        self, type: int, lower: int, upper: int, scope: int, port: int, key: int, dests: Iterable[int]
    ) -> tuple[Publication | None, list[tuple[int, bytes]]]:
        """Insert a local publication and build its distribution messages at once.

        Returns the publication (``None`` if an identical one already existed) and
        ``(dest_node, message)`` pairs — none for node scope. (Changes staged earlier and
        not flushed yet go out first, in the same messages.)
        """
        p = self.stage_publish(type, lower, upper, scope, port, key)
        return p, self.flush(dests) if self._staged else []

    def withdraw(
        self, type: int, lower: int, upper: int, key: int, dests: Iterable[int]
    ) -> tuple[Publication | None, list[tuple[int, bytes]]]:
        """Remove a local publication and build its withdrawal messages (none for node scope)."""
        p = self.stage_withdraw(type, lower, upper, key)
        return p, self.flush(dests) if self._staged else []

    def stage_publish(self, type: int, lower: int, upper: int, scope: int, port: int, key: int) -> Publication | None:
        """Insert a local publication now; its distribution waits for :meth:`flush`.

        ``None`` if an identical publication already existed.
        """
        p = self.table.insert(type, lower, upper, scope, self.own_node, port, key)
        if p is not None and scope == _CLUSTER:
            self._cluster[p] = None
            self.stats["names_published"] += 1
            self._stage(PUBLICATION, ITEM.pack(type, lower, upper, port, key))
        return p

    def stage_withdraw(self, type: int, lower: int, upper: int, key: int) -> Publication | None:
        """Remove a local publication now; its distribution waits for :meth:`flush`."""
        p = self.table.remove(type, lower, upper, self.own_node, key)
        if p is not None and p in self._cluster:
            del self._cluster[p]
            self.stats["names_withdrawn"] += 1
            self._stage(WITHDRAWAL, ITEM.pack(type, lower, upper, p.port, key))
        return p

    def _stage(self, mtype: int, item: bytes) -> None:
        staged = self._staged
        if staged and staged[-1][0] == mtype:
            staged[-1][1].extend(item)
        else:
            staged.append((mtype, bytearray(item)))
        self._n_staged += 1

    @property
    def staged(self) -> int:
        """Changes staged and not flushed yet."""
        return self._n_staged

    def flush(self, dests: Iterable[int], mtu: int = 0) -> list[tuple[int, bytes]]:
        """Messages for every staged change, as ``(dest_node, message)`` pairs.

        Consecutive changes of one kind share a message of up to ``(mtu - 40) // 20`` items
        (``mtu`` 0: one item per message, as the kernel sends them); each message takes the
        next ``named_seqno`` whether or not there is a peer to send it to.
        """
        staged, self._staged = self._staged, []
        self._n_staged = 0
        step = max(1, (mtu - INT_H_SIZE) // DISTR_ITEM_SIZE) * DISTR_ITEM_SIZE
        dests = list(dests)
        own = self.own_node
        out: list[tuple[int, bytes]] = []
        for mtype, run in staged:
            for i in range(0, len(run), step):
                items = bytes(run[i : i + step])
                seqno = self.snd_nxt
                self.snd_nxt = (seqno + 1) & 0xFFFF
                for d in dests:
                    out.append((d, name_distr_msg(mtype, items, own, d, named_seqno=seqno)))
        return out

    # -- peers -----------------------------------------------------------------------------

    def node_up(self, node: int, mtu: int) -> list[bytes]:
        """Bulk messages for a peer whose link just came up (``tipc_named_node_up``).

        Items are packed ``(mtu - 40) // 20`` per message; the last message carries
        ``last_bulk`` and :attr:`snd_nxt`, the first incremental seqno the peer will see.
        Also resets this peer's receive state (a new session starts with its bulk).
        """
        self._rx[node] = _Rx()
        per_msg = max(1, (mtu - INT_H_SIZE) // DISTR_ITEM_SIZE)
        pubs = list(self._cluster)
        chunks = [pubs[i : i + per_msg] for i in range(0, len(pubs), per_msg)] or [[]]
        own = self.own_node
        out = []
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            h = Header(NAME_DISTRIBUTOR, PUBLICATION, INT_H_SIZE, own_node=own, dest_node=node)
            h.bulk = 1
            h.non_legacy = 1
            h.bc_ack_invalid = 1
            if last:
                h.last_bulk = 1
                h.named_seqno = self.snd_nxt
            out.append(h.build(b"".join(encode_item(p) for p in chunk)))
        return out

    def node_down(self, node: int) -> list[Publication]:
        """Purge everything ``node`` published (``tipc_publ_notify``); returns the purged."""
        self._rx.pop(node, None)
        return self.table.purge_node(node)

    # -- receive ---------------------------------------------------------------------------

    def receive(self, node: int, msg: bytes | memoryview) -> int:
        """Apply a ``NAME_DISTRIBUTOR`` message received from peer ``node``.

        Returns the number of items applied (possibly from earlier deferred messages).
        Raises :class:`RemoteProtocolError` for a malformed message.
        """
        h = Header.decode(msg)
        if h.user != NAME_DISTRIBUTOR:
            raise RemoteProtocolError(f"not a name distributor message (user {h.user})")
        mtype = h.mtype
        if mtype not in (PUBLICATION, WITHDRAWAL):
            self.stats["name_msgs_dropped"] += 1
            return 0
        payload = bytes(msg[h.hsize : h.size])
        if len(payload) % DISTR_ITEM_SIZE:  # validate before touching any state
            raise RemoteProtocolError(
                f"name distributor payload of {len(payload)} bytes is not a multiple of {DISTR_ITEM_SIZE}"
            )
        rx = self._rx.get(node)
        if rx is None:
            rx = self._rx[node] = _Rx()
        orig = h.orignode or node
        seqno = h.named_seqno
        applied = 0
        if h.bulk and rx.open:
            # The link never repeats a bulk within a session (a new session starts with
            # node_up/node_down, which reset this state): a late copy would resurrect
            # withdrawn names, so drop it.
            self.stats["name_msgs_dropped"] += 1
            return 0
        if h.bulk or not h.non_legacy:
            # Bulk and legacy messages apply at once; the last bulk opens the stream.
            applied += self._apply(mtype, orig, payload)
            if h.last_bulk:
                rx.rcv_nxt = seqno
                rx.open = True
                # Deferred messages older than the bulk snapshot are already reflected in it.
                rx.deferred = [d for d in rx.deferred if not _less(d[0], seqno)]
        elif rx.open and seqno == rx.rcv_nxt:
            rx.rcv_nxt = (seqno + 1) & 0xFFFF
            applied += self._apply(mtype, orig, payload)
        elif rx.open and _less(seqno, rx.rcv_nxt):
            self.stats["name_msgs_dropped"] += 1  # duplicate / stale
            return 0
        else:
            if any(d[0] == seqno for d in rx.deferred):
                self.stats["name_msgs_dropped"] += 1
                return 0
            if len(rx.deferred) >= MAX_DEFERRED:
                self.stats["name_msgs_dropped"] += 1
                rx.deferred.pop(0)
            rx.deferred.append((seqno, mtype, orig, payload))
            return 0
        applied += self._drain(rx)
        return applied

    def _drain(self, rx: _Rx) -> int:
        applied = 0
        progress = rx.open
        while progress and rx.deferred:
            progress = False
            for i, (seqno, mtype, orig, payload) in enumerate(rx.deferred):
                if seqno == rx.rcv_nxt:
                    del rx.deferred[i]
                    rx.rcv_nxt = (seqno + 1) & 0xFFFF
                    applied += self._apply(mtype, orig, payload)
                    progress = True
                    break
            rx.deferred = [d for d in rx.deferred if not _less(d[0], rx.rcv_nxt)]
        return applied

    def _apply(self, mtype: int, node: int, payload: bytes) -> int:
        applied = 0
        if mtype == PUBLICATION:
            insert = self.table.insert
            for type, lower, upper, port, key in ITEM.iter_unpack(payload):
                if lower <= upper and insert(type, lower, upper, _CLUSTER, node, port, key) is not None:
                    applied += 1
        else:
            remove = self.table.remove
            for type, lower, upper, _port, key in ITEM.iter_unpack(payload):
                if remove(type, lower, upper, node, key) is not None:
                    applied += 1
        self.stats["name_items_applied"] += applied
        self.stats["name_items_ignored"] += len(payload) // DISTR_ITEM_SIZE - applied
        return applied

    # -- inspection ------------------------------------------------------------------------

    def own_cluster_publications(self) -> list[Publication]:
        """This node's cluster-scope publications, in publication order."""
        return list(self._cluster)
