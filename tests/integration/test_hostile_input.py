"""Hostile input at live sockets: dropped and counted, never a crash, others still served.

* **A userspace node's UDP port** (real sockets on loopback): garbage, empty, truncated,
  oversize, wrong-version and unknown-peer datagrams from a raw UDP socket, interleaved with
  real RPC calls through that node, which must all succeed.
* **An RPC server's socket and a client's socket** (memory transport): malformed frames of
  every kind from a raw endpoint, interleaved with real calls.

At least 10 000 hypothesis-generated inputs each (slow tier). Nothing may reach the event
loop's exception handler (that is where an exception escaping a socket callback would end
up: asyncio logs it and carries on, so "no crash" alone would prove nothing).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
from typing import Any, Iterator

import anyio
import pytest
from hypothesis import strategies as st

import tipcrpc
from fuzzing import LoopErrors, frames, generate, shorter_than_a_header
from tipcrpc.testing import Inbox, MemoryCluster
from tipcrpc.transport.user import UserTransport
from tipcrpc.transport.user import msg as M

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TIMEOUT = 30.0
BATCH = 100  # datagrams between two real calls (well inside a loopback socket's buffer)

echo_svc = tipcrpc.Service("test.hostile.echo")


@echo_svc.method(idempotent=True)
def echo(x: Any) -> Any:
    return x


@echo_svc.method(name="slow_echo")
async def slow_echo(x: Any) -> Any:
    await asyncio.sleep(0)
    return x


def _batches(items: list[Any], size: int = BATCH) -> Iterator[list[Any]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


# ------------------------------------------------------------------------------ UDP port


def _udp_garbage(server_addr: int) -> st.SearchStrategy[tuple[str, bytes]]:
    """(class, datagram). Classes whose drop the node must count as ``malformed`` are
    prefixed ``bad-``; the others may legitimately be counted elsewhere (``unknown_peer``,
    ``not_for_us``, ``netid_mismatch``...)."""
    fake = 0x0BADF00D
    valid = st.builds(
        lambda port, inst, payload: M.named_msg(0, fake, port, server_addr, 0, 18888, inst, payload, 2),
        st.integers(1, 2**32 - 1), st.integers(0, 2**32 - 1), st.binary(max_size=120),
    )  # fmt: skip

    def set_version(p: bytes, v: int) -> bytes:
        return bytes([(p[0] & 0x1F) | (v << 5)]) + p[1:]

    return st.one_of(
        st.tuples(st.just("random"), st.binary(max_size=200)),
        st.tuples(st.just("bad-empty-or-short"), st.binary(max_size=M.MIN_H_SIZE - 1)),
        st.tuples(
            st.just("bad-truncated"), st.builds(lambda p, n: p[: max(M.MIN_H_SIZE, len(p) - 1 - n)], valid, st.integers(0, 40))
        ),  # fmt: skip
        st.tuples(st.just("bad-version"), st.builds(set_version, valid, st.sampled_from([0, 1, 3, 4, 5, 6, 7]))),
        st.tuples(st.just("unknown-peer"), valid),
        st.tuples(
            st.just("unknown-peer-mutated"),
            st.builds(
                lambda p, pos, val: p[: pos % len(p)] + bytes([val]) + p[pos % len(p) + 1 :],
                valid,
                st.integers(0, 200),
                st.integers(0, 255),
            ),
        ),  # fmt: skip
    )


#: The node's counters of datagrams it dropped (``Node.rcv``).
DROP_COUNTERS = ("malformed", "not_for_us", "unknown_peer", "bcast_dropped", "netid_mismatch")


def _netid() -> int:
    return 1000 + (os.getpid() * 53) % 8999


async def test_garbage_at_a_user_node_udp_port_is_counted_and_calls_go_on() -> None:
    netid = _netid()
    async with UserTransport(identity=f"hostile-srv-{netid}", netid=netid, discovery_wait=0.0) as srv_t, \
            UserTransport(identity=f"hostile-cli-{netid}", netid=netid, discovery_wait=0.0) as cli_t, \
            tipcrpc.serve(echo_svc, instance=1, transport=srv_t), \
            tipcrpc.connect(cli_t) as client:  # fmt: skip
        packets = generate(_udp_garbage(srv_t.own_node.addr))
        # A few datagrams at the largest size UDP carries, far above the link MTU.
        oversize = [("bad-oversize", os.urandom(65_507)), ("bad-oversize", M.named_msg(
            0, 0x0BADF00D, 1, srv_t.own_node.addr, 0, 18888, 1, bytes(65_000), 2)[:65_507])]  # fmt: skip
        raw = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        raw.bind(("127.0.0.1", 0))
        dest = srv_t.local_media
        call = client.options(timeout=TIMEOUT, wait_ready=True)
        try:
            with LoopErrors() as errors, anyio.fail_after(300):
                assert await call.call(echo_svc, "echo", -1) == -1
                before = dict(srv_t.statistics())
                for i, batch in enumerate(_batches(packets)):
                    for _cls, data in batch:
                        raw.sendto(data, dest)
                    # Datagrams from one socket... and the call's own datagrams reach the
                    # server's UDP socket queue after the batch: the reply proves the node
                    # read (and survived) everything before it.
                    assert await call.call(echo_svc, "echo", i) == i
                for _cls, data in oversize:
                    raw.sendto(data, dest)
                    assert await call.call(echo_svc, "slow_echo", "big") == "big"
                after = dict(srv_t.statistics())
        finally:
            raw.close()
        assert errors.seen == [], errors.seen[:3]
        sent = packets + oversize
        got = after["udp_rx"] - before["udp_rx"]
        assert got >= len(sent), f"{got} datagrams read, {len(sent)} sent: some never reached the node"
        bad = sum(1 for cls, _ in sent if cls.startswith("bad-"))
        assert after["malformed"] - before["malformed"] >= bad
        delta = {k: v - before.get(k, 0) for k, v in after.items() if v != before.get(k, 0)}
        # Each hostile datagram was dropped and counted exactly once, under one of the node's
        # drop counters (the real traffic of the test moves none of them).
        assert sum(delta.get(k, 0) for k in DROP_COUNTERS) == len(sent), delta
        print(f"\nUDP port: {len(sent)} hostile datagrams ({bad} certainly malformed); counters {delta}")


# ------------------------------------------------------------------------------ RPC sockets


async def test_malformed_frames_at_rpc_sockets_are_counted_and_calls_go_on() -> None:
    cluster = MemoryCluster(seed=120)
    async with cluster.node("srv") as srv_t, cluster.node("cli") as cli_t, cluster.node("evil") as evil_t, \
            tipcrpc.serve(echo_svc, instance=1, transport=srv_t) as server, \
            tipcrpc.connect(cli_t) as client:  # fmt: skip
        evil = await evil_t.open_endpoint(Inbox())
        garbage = generate(frames)
        call = client.options(timeout=TIMEOUT, wait_ready=True)
        with LoopErrors() as errors, anyio.fail_after(300):
            assert await call.call(echo_svc, "echo", -1) == -1
            for target in (server.address, client.address):
                before_server = dict(server.statistics())
                before_client = dict(client.statistics())
                for i, batch in enumerate(_batches(garbage)):
                    for data in batch:
                        if data:  # the transport contract refuses empty datagrams
                            evil.send(target, data)
                    # The memory links deliver in order per node pair only; these calls come
                    # from another node, so also check the counters at the end.
                    assert await call.call(echo_svc, "echo", i) == i
                    assert await call.call(echo_svc, "slow_echo", i) == i
                after_server = dict(server.statistics())
                after_client = dict(client.statistics())
                who = "server" if target == server.address else "client"
                delta = {k: after_server[k] - before_server.get(k, 0) for k in after_server if isinstance(after_server[k], int)}
                cdelta = {k: after_client[k] - before_client.get(k, 0) for k in after_client if isinstance(after_client[k], int)}
                print(f"\n{who} socket: {len(garbage)} frames; server {delta}; client {cdelta}")
                short = shorter_than_a_header([d for d in garbage if d])
                assert short > 0
                assert (delta if who == "server" else cdelta)["malformed"] >= short
        assert errors.seen == [], errors.seen[:3]
    await cluster.aclose()
