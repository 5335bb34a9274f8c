"""Userspace tipcrpc nodes in a real kernel TIPC cluster (UDP bearer), in the ktipc guest.

One cluster per module (see ``mixed_cluster.py``): kernel nodes ``k1``, ``k2`` and userspace
node processes ``u1``, ``u2``, every pair linked, all four serving one service (instances
1..4) and ``u1``/``u2`` also holding a raw endpoint each. The tests run in file order: the
soak comes before the faults, whose victims are restored afterwards.

Measured figures are printed (``-rP`` or ``-s``); docs/transports.md quotes them.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from typing import Any, Dict, Iterator, List

import anyio
import pytest

import tipcrpc
from tipcrpc.addr import service_type
from tipcrpc.transport.kernel import KernelTransport
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel import wire
from tipcrpc.transport.kernel.netlink import TipcNetlink
from tipcrpc.transport.user import msg as m
from tipcrpc.transport.user.discover import ADVERTISED_CAPABILITIES

from ktipc_cluster import TopologyWatch, wait_published, wait_withdrawn
from mixed_cluster import MixedCluster, kmsg_position, kmsg_since, link_report
from tipcrpc.addr import LINK_STATE
from user_agent_proc import payload

#: The module's cluster is built by its first test: four Python processes starting in the
#: emulated guest (about 80 s on a loaded host, START_S at most) count against its timeout.
pytestmark = pytest.mark.timeout(600)

SERVICE = f"tipcrpc.kernel.mixed.{os.getpid()}"
STYPE = service_type(SERVICE)
RAW_TYPE = 0x7E57_2000 + os.getpid() % 0x1000  #: raw endpoints/sockets for multicast
INSTANCE = {"k1": 1, "k2": 2, "u1": 3, "u2": 4}
START_S = 300.0  #: a Python process starting in the emulated guest can take minutes on a loaded host
SOAK_S = 60.0


def _raw(name: str) -> str:
    return f"{RAW_TYPE}:{100 + INSTANCE[name]}"


async def call(client: tipcrpc.Client, method: str, *args: Any, timeout: float, **options: Any) -> Any:
    """``client.call`` of SERVICE (one place to follow the call API)."""
    return await client.options(timeout=timeout, **options).call(SERVICE, method, *args)


@pytest.fixture(scope="module")
def mixed() -> Iterator[MixedCluster]:
    cluster = MixedCluster(discovery="replicast", tolerance_ms=1000)
    cluster.kmsg_start = kmsg_position()  # type: ignore[attr-defined]
    try:
        cluster.start_kernel()
        for node in cluster.user_nodes:
            cluster.start_agent(node, SERVICE, INSTANCE[node.name], _raw(node.name))
        for node in cluster.kernel_nodes:
            cluster.start_server(node, SERVICE, INSTANCE[node.name])
        for proc in list(cluster.agents.values()) + list(cluster.servers.values()):
            proc.wait_ready(START_S)
        cluster.wait_mesh(60)
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def kclient(mixed: MixedCluster) -> Any:
    async with KernelTransport(netns=mixed.node("k1").netns) as t, tipcrpc.connect(t) as client:
        yield client


def _proto(pkt: bytes) -> m.Header | None:
    try:
        return m.Header.decode(pkt)
    except Exception:
        return None


def test_links_up_one_round_trip_after_discovery(mixed: MixedCluster) -> None:
    """Every pair is linked; kernel<->userspace links came up on our ACTIVATE, not a kernel tick."""
    with TipcNetlink(netns=mixed.node("k1").netns) as nl:
        links = [ln for ln in nl.links() if not ln.broadcast]
    assert len(links) == 3 and all(ln.up for ln in links), links
    assert mixed.agents["u1"].request("links") == sorted(n.addr for n in mixed.nodes if n.name != "u1")

    assert mixed.capture is not None
    recs = mixed.capture.snapshot()
    k1, u1, k2 = mixed.node("k1"), mixed.node("u1"), mixed.node("k2")
    for peer in (u1, k2):
        between = [(t, src, h) for t, src, dst, pkt in recs if (h := _proto(pkt)) is not None
                   and {src[0], dst[0]} == {k1.ip, peer.ip}]
        # from the first discovery request/response the peer sends (a kernel trials its address first)
        t_disc = next(t for t, s, h in between if s[0] == peer.ip and h.user == m.LINK_CONFIG
                      and h.mtype in (m.DSC_REQ_MSG, m.DSC_RESP_MSG))
        t_kup = next(t for t, s, h in between if s[0] == k1.ip and h.user == m.LINK_PROTOCOL and h.mtype == m.STATE_MSG)
        t_pup = next(t for t, s, h in between if s[0] == peer.ip and h.user == m.LINK_PROTOCOL and h.mtype == m.STATE_MSG)
        k_setup = [h.mtype for t, s, h in between if t < t_kup and s[0] == k1.ip and h.user == m.LINK_PROTOCOL]
        print(f"\n[mixed] k1<->{peer.name}: k1 link up {1000 * (t_kup - t_disc):.1f} ms, {peer.name} up "
              f"{1000 * (t_pup - t_disc):.1f} ms after {peer.name}'s first discovery message; "
              f"k1 set-up messages before: {k_setup}")
        if not peer.kernel:
            # The kernel never needed its timer (which sends ACTIVATE from ESTABLISHING): our
            # unaddressed ACTIVATE took its link up and its first STATE announced it.
            assert m.ACTIVATE_MSG not in k_setup, k_setup
            user_setup = [(h.mtype, h.dest_session_valid) for t, s, h in between
                          if t < t_kup and s[0] == peer.ip and h.user == m.LINK_PROTOCOL]
            assert (m.ACTIVATE_MSG, 0) in user_setup, user_setup
            # We advertise 0x72 (docs/transports.md); the kernel adapts: its STATE messages to
            # us carry no Gap ACK record (no TIPC_GAP_ACK_BLOCK), unlike those to k2.
            caps = {h.capabilities for t, s, h in between if s[0] == peer.ip and h.user == m.LINK_CONFIG}
            assert caps == {ADVERTISED_CAPABILITIES} == {0x72}, caps
            state_sizes = {h.size for t, s, h in between
                           if s[0] == k1.ip and h.user == m.LINK_PROTOCOL and h.mtype == m.STATE_MSG}
            assert state_sizes == {m.INT_H_SIZE}, state_sizes


def test_name_tables_converge_both_ways(mixed: MixedCluster) -> None:
    """The kernel's name table (netlink, as ``tipc nametable show``) and each userspace node's view."""
    everyone = set(INSTANCE.values())
    for k in mixed.kernel_nodes:
        wait_published(k.netns, STYPE, everyone, 60)
        with TipcNetlink(netns=k.netns) as nl:
            rows = {(p.lower, p.node) for p in nl.name_table() if p.type == STYPE}
        assert rows == {(INSTANCE[n.name], n.addr) for n in mixed.nodes}, rows
    for name, agent in mixed.agents.items():
        agent.request("wait_names", type=STYPE, instances=sorted(everyone), timeout_s=60, timeout=70)
        rows = {(lo, node) for lo, _up, node, _port in agent.request("names", type=STYPE)}
        assert rows == {(INSTANCE[n.name], n.addr) for n in mixed.nodes}, (name, rows)
        # node presence: every node up, as the kernel nodes announce themselves ({0, addr})
        assert agent.request("nodes") == sorted(n.addr for n in mixed.nodes)


async def test_calls_both_ways_and_call_all(mixed: MixedCluster, kclient: tipcrpc.Client) -> None:
    with anyio.fail_after(120):
        await kclient.wait_for(SERVICE, 4, timeout=60)
        for name in ("u1", "u2", "k2"):
            assert await call(kclient, "whoami", timeout=30, instance=INSTANCE[name]) == name
        results = await kclient.options(timeout=30).call_all(SERVICE, "whoami")
        assert sorted(r.value for r in results) == ["k1", "k2", "u1", "u2"], results
        agent = mixed.agents["u1"]
        for name in ("k1", "k2", "u2"):
            got = await anyio.to_thread.run_sync(lambda n=name: agent.request(
                "call", service=SERVICE, method="whoami", instance=INSTANCE[n], call_timeout=30))
            assert got == name
        got = await anyio.to_thread.run_sync(lambda: agent.request(
            "call_all", service=SERVICE, method="whoami", call_timeout=30))
        assert got == ["k1", "k2", "u1", "u2"]


def _rx_bundled(cluster: MixedCluster) -> tuple[int, int]:
    """Messages k1 and k2 have received inside bundles, over all their unicast links (a
    netlink socket of its own: call it from a thread, not the event loop)."""
    got = []
    for kernel in ("k1", "k2"):
        with TipcNetlink(netns=cluster.node(kernel).netns) as nl:
            got.append(sum(ln.stats.get("rx_bundled", 0) for ln in nl.links() if not ln.broadcast))
    return got[0], got[1]


async def test_concurrent_calls_are_bundled_and_a_kernel_unpacks_them(mixed: MixedCluster,
                                                                      kclient: tipcrpc.Client) -> None:
    """Under concurrent calls the userspace node bundles (MSG_BUNDLER, ``tipc_msg_try_bundle``
    layout): its replies to a kernel client and its calls to a kernel server. The kernels
    count the bundled messages (``rx_bundled``) and every call answers."""
    agent = mixed.agents["u1"]
    before = await anyio.to_thread.run_sync(lambda: agent.request("stats"))
    k1_before, k2_before = await anyio.to_thread.run_sync(lambda: _rx_bundled(mixed))
    n = 200
    with anyio.fail_after(180):
        await kclient.wait_for(SERVICE, INSTANCE["u1"], timeout=60)
        # k1 -> u1: u1's replies leave while its link to k1 has packets in flight.
        got = await asyncio.gather(*(call(kclient, "whoami", timeout=60, instance=INSTANCE["u1"]) for _ in range(n)))
        assert got == ["u1"] * n
        # u1 -> k2: u1's own calls to a kernel server.
        got = await anyio.to_thread.run_sync(lambda: agent.request(
            "many", service=SERVICE, method="whoami", n=n, instance=INSTANCE["k2"], call_timeout=60, timeout=120))
        assert got == ["k2"] * n
    after = await anyio.to_thread.run_sync(lambda: agent.request("stats"))
    sent = after["sent_bundled"] - before["sent_bundled"]
    k1_after, k2_after = await anyio.to_thread.run_sync(lambda: _rx_bundled(mixed))
    k1_got, k2_got = k1_after - k1_before, k2_after - k2_before
    print(f"\n[mixed] {n} concurrent calls each way: u1 sent {after['sent_bundles'] - before['sent_bundles']} "
          f"bundles of {sent} messages; k1 received {k1_got}, k2 {k2_got} bundled messages")
    assert k1_got > 0 and k2_got > 0, (k1_got, k2_got)
    assert sent == k1_got + k2_got, (sent, k1_got, k2_got)  # each one unpacked by a kernel
    assert after["links_down"] == before["links_down"]


def test_multicast_both_ways(mixed: MixedCluster) -> None:
    """A kernel ``sendto`` of a name range reaches the userspace instances; and the reverse."""
    k1 = mixed.node("k1")
    user_insts = {100 + INSTANCE[u.name] for u in mixed.user_nodes}
    wait_published(k1.netns, RAW_TYPE, user_insts, 60)
    data = b"kernel multicast " + os.urandom(8)
    with knetns.create_socket(k1.netns, wire.AF_TIPC, socket.SOCK_RDM) as s:
        s.sendto(data, (wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, 100, 199, 0))
    for agent in mixed.agents.values():
        ev = agent.wait_event(lambda e: e["ev"] == "raw" and e["data"] == data.hex(), 60, "kernel multicast")
        assert ev["src"][0] == k1.addr

    socks = []
    try:
        for k in mixed.kernel_nodes:
            s = knetns.create_socket(k.netns, wire.AF_TIPC, socket.SOCK_RDM)
            s.bind((wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, 200 + INSTANCE[k.name], 200 + INSTANCE[k.name], 2))
            s.settimeout(60)
            socks.append(s)
        agent = mixed.agents["u1"]
        kinsts = [200 + INSTANCE[k.name] for k in mixed.kernel_nodes]
        agent.request("wait_names", type=RAW_TYPE, instances=kinsts, timeout_s=60, timeout=70)
        back = b"user multicast " + os.urandom(8)
        agent.request("mcast", type=RAW_TYPE, lower=200, upper=299, data=back.hex())
        for s in socks:
            got, src = s.recvfrom(1000)
            assert got == back and src[1] == mixed.node("u1").addr
    finally:
        for s in socks:
            s.close()


#: 16 MiB kernel->userspace passed in 8 of 10 guest runs on 2026-12-07; both failures on a host
#: running 3-4 emulated guests on two CPUs. In the failure whose report survived, every peer of u1 (both
#: kernels and u2) reset its link to u1 within 40 ms of the others: u1 went silent to everyone
#: for longer than the 1 s tolerance of this cluster, and its keepalive thread (which sends
#: STATE while the event loop is blocked) did not cover the silence either - the whole process,
#: not only its loop, got no CPU or held the GIL. Not explained further yet. A failure prints
#: link_report(): kernel link statistics and TIPC log, u1's counters and its link-down reasons.
_XFAIL_16MIB = pytest.mark.xfail(
    reason="open: under heavy host load u1 has gone silent for longer than the 1 s link tolerance during "
           "a 16 MiB transfer (2 of 10 guest runs; every peer reset its link to it); see the comment above "
           "and docs/transports.md", strict=False)


@pytest.mark.parametrize("size", [64 * 1024, pytest.param(16 * 1024 * 1024, marks=_XFAIL_16MIB)],
                         ids=["64KiB", "16MiB"])
async def test_payloads_both_ways(mixed: MixedCluster, kclient: tipcrpc.Client, size: int) -> None:
    """Kernel -> userspace (the kernel fragments) and userspace -> kernel (tipcrpc chunks, our fragments)."""
    kmsg_from = kmsg_position()
    try:
        with anyio.fail_after(300):
            data = payload(size, seed=size)
            t0 = time.perf_counter()
            assert await call(kclient, "echo", data, timeout=240, instance=INSTANCE["u1"]) == data
            dt_k = time.perf_counter() - t0
            agent = mixed.agents["u1"]
            dt_u = await anyio.to_thread.run_sync(lambda: agent.request(
                "echo", service=SERVICE, size=size, seed=size, instance=INSTANCE["k2"], call_timeout=240,
                timeout=300))
    except Exception as e:
        report = await anyio.to_thread.run_sync(lambda: link_report(mixed, "k1", "u1", kmsg_from))
        print(f"\n[mixed] {size} B echo failed: {type(e).__name__}: {e}\n{report}", flush=True)
        raise AssertionError(f"{size} B echo failed ({type(e).__name__}: {e}); the links:\n{report}") from e
    print(f"\n[mixed] {size} B echo: kernel k1 -> user u1 {dt_k:.2f} s; user u1 -> kernel k2 {dt_u:.2f} s")
    print(await anyio.to_thread.run_sync(lambda: link_report(mixed, "k1", "u1", kmsg_from)))


async def test_soak_no_link_resets(mixed: MixedCluster, kclient: tipcrpc.Client) -> None:
    """60 s of calls both ways: no link goes down anywhere, no TIPC kernel message above info."""
    downs: List[str] = []
    stop = threading.Event()

    def watch(name: str) -> None:
        with TopologyWatch(mixed.node(name).netns, LINK_STATE) as w:
            while not stop.is_set():
                try:
                    ev = w.next(time.monotonic() + 0.5)
                except TimeoutError:
                    continue
                if ev is not None and ev.event == wire.TIPC_WITHDRAWN and not w.in_snapshot:
                    downs.append(f"{name}: link to {ev.found_lower:08x} down")

    watchers = [threading.Thread(target=watch, args=(k.name,)) for k in mixed.kernel_nodes]
    for th in watchers:
        th.start()
    before = {n: a.request("stats")["links_down"] for n, a in mixed.agents.items()}
    agent = mixed.agents["u1"]
    rid = agent.submit("soak", service=SERVICE, instances=[INSTANCE["k1"], INSTANCE["k2"]], seconds=SOAK_S)
    counts: Dict[str, int] = {}
    try:
        with anyio.fail_after(SOAK_S + 120):
            end = time.monotonic() + SOAK_S
            i = 0
            while time.monotonic() < end:
                target = ("u1", "u2")[i % 2]
                label = await call(kclient, "whoami", timeout=10, instance=INSTANCE[target])
                counts[label] = counts.get(label, 0) + 1
                i += 1
            user_counts = await anyio.to_thread.run_sync(lambda: agent.result(rid, 120))
    finally:
        stop.set()
        for th in watchers:
            th.join()
    after = {n: a.request("stats")["links_down"] for n, a in mixed.agents.items()}
    print(f"\n[mixed] soak {SOAK_S:.0f} s: kernel k1 -> user calls {counts}; user u1 -> kernel calls {user_counts}")
    assert set(counts) == {"u1", "u2"} and set(user_counts) == {"k1", "k2"}
    assert not downs and before == after, (downs, before, after)
    bad = [(lvl, msg) for lvl, msg in kmsg_since(mixed.kmsg_start)  # type: ignore[attr-defined]
           if "tipc" in msg.lower() and lvl < 6]
    assert not bad, bad


def test_sigkill_user_node_is_withdrawn_and_restart_rejoins_as_same_node(mixed: MixedCluster) -> None:
    k1, u2 = mixed.node("k1"), mixed.node("u2")
    agent = mixed.agents["u2"]
    agent.kill()
    dt_withdrawn = wait_withdrawn(k1.netns, STYPE, INSTANCE["u2"], 30)
    print(f"\n[mixed] SIGKILL of u2: k1 withdrew its name after {dt_withdrawn * 1000:.0f} ms "
          f"(link tolerance {mixed.tolerance_ms} ms)")
    assert dt_withdrawn < mixed.tolerance_ms / 1000 * 2 + 1.0

    # Restart with the same TIPCRPC_USER_IDENTITY: the same node address comes back.
    again = mixed.start_agent(u2, SERVICE, INSTANCE["u2"], _raw("u2"))
    again.wait_ready(START_S)
    t1 = time.monotonic()
    assert again.ready_addr == u2.addr
    wait_published(k1.netns, STYPE, {INSTANCE["u2"]}, 60)
    dt_rejoin = time.monotonic() - t1
    mixed.wait_mesh(60)
    with TipcNetlink(netns=k1.netns) as nl:
        nodes = nl.nodes()
    print(f"[mixed] restarted u2 published again on k1 {dt_rejoin * 1000:.0f} ms after READY; "
          f"k1 nodes: {[(f'{n.addr:08x}', n.up) for n in nodes]}")
    # no dead node left behind: exactly the three others, all up (a node does not list itself)
    assert sorted(n.addr for n in nodes) == sorted(n.addr for n in mixed.nodes if n is not k1)
    assert all(n.up for n in nodes)


def test_kernel_bearer_disabled_user_side_fails_over(mixed: MixedCluster) -> None:
    """k2 leaves (bearer disabled) with calls in flight there: u1 sees NodeDown and fails over."""
    k2 = mixed.node("k2")
    agent = mixed.agents["u1"]
    server = mixed.servers["k2"]
    rid = agent.submit("slow_many", service=SERVICE, n=12, seconds=0.3, call_timeout=60)
    server.wait_started(60)
    t0 = time.monotonic()
    mixed.disable_kernel_bearer(k2)
    ev = agent.wait_event(lambda e: e["ev"] == "node" and not e["up"] and e["node"] == k2.addr and e["t"] >= t0, 30,
                          "NodeDown of k2 on u1")
    labels = agent.result(rid, 60)
    t_done = time.monotonic()
    print(f"\n[mixed] k2 bearer disabled: u1 saw NodeDown after {(ev['t'] - t0) * 1000:.0f} ms; all "
          f"{len(labels)} calls done after {(t_done - t0) * 1000:.0f} ms: {sorted(labels)}")
    # The kernel says it is stopping (RESET with peer_stopping): no need to wait for the tolerance.
    assert ev["t"] - t0 < mixed.tolerance_ms / 1000 + 1.0
    # Every call answered (a failed one would have failed slow_many), those held by k2 elsewhere.
    assert len(labels) == 12
    assert t_done - t0 < mixed.tolerance_ms / 1000 + 0.3 + 5.0
    mixed.enable_kernel_bearer(k2)
    mixed.wait_mesh(60)


GOLDEN_PAYLOAD = bytes(range(256)) * 12  #: 3072 bytes: the kernel fragments it over our 1400-byte link


def test_kernel_packets_to_a_userspace_node_decode_and_reencode(mixed: MixedCluster) -> None:
    """Real kernel data, named, multicast, fragment and name-distributor packets, rebuilt byte for byte.

    k1 sends them from a raw socket to u1's raw endpoint; the capture on k1's veth holds the
    packets. With ``KTIPC_GOLDEN_OUT=<file>`` they are written out (hex) for
    ``tests/unit/user/golden.py``.
    """
    from tipcrpc.transport.user.fragment import Reassembler, fragment

    k1, u1 = mixed.node("k1"), mixed.node("u1")
    agent = mixed.agents["u1"]
    inst = 100 + INSTANCE["u1"]
    wait_published(k1.netns, RAW_TYPE, {inst}, 60)
    with TipcNetlink(netns=k1.netns) as nl:
        (row,) = [p for p in nl.name_table() if p.type == RAW_TYPE and p.lower == inst]
    sends = {
        "named": (b"golden named", (wire.TIPC_ADDR_NAME, RAW_TYPE, inst, 0)),
        "direct": (b"golden direct", (wire.TIPC_ADDR_ID, row.node, row.port, 0)),
        "mcast": (b"golden mcast", (wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, inst, inst, 0)),
        "fragmented": (GOLDEN_PAYLOAD, (wire.TIPC_ADDR_NAME, RAW_TYPE, inst, 0)),
    }
    t_start = time.monotonic()
    with knetns.create_socket(k1.netns, wire.AF_TIPC, socket.SOCK_RDM) as s:
        s.bind((wire.TIPC_ADDR_NAMESEQ, RAW_TYPE, 300, 300, 2))  # a PUBLICATION to every peer
        agent.request("wait_names", type=RAW_TYPE, instances=[300], timeout_s=60, timeout=70)
        for data, dest in sends.values():
            s.sendto(data, dest)
            agent.wait_event(lambda e, d=data: e["ev"] == "raw" and e["data"] == d.hex(), 60, "delivery")
    agent.request("wait_gone", type=RAW_TYPE, instance=300, timeout_s=60, timeout=70)  # the WITHDRAWAL
    assert mixed.capture is not None
    pkts = [(pkt, m.Header.decode(pkt)) for t, src, dst, pkt in mixed.capture.snapshot()
            if t >= t_start and src[0] == k1.ip and dst[0] == u1.ip]
    out = os.environ.get("KTIPC_GOLDEN_OUT")
    if out:  # everything k1 sent u1, before any check can fail (to study a failure offline)
        with open(out + ".all", "w") as f:
            f.writelines(f"{pkt.hex()}\n" for pkt, _h in pkts)

    def first(pred: Any, what: str) -> tuple[bytes, m.Header]:
        found = next(((p, h) for p, h in pkts if pred(p, h)), None)
        assert found is not None, f"no {what} packet captured"
        return found

    golden: Dict[str, bytes] = {}
    for kind, mtype in (("named", m.TIPC_NAMED_MSG), ("direct", m.TIPC_DIRECT_MSG), ("mcast", m.TIPC_MCAST_MSG)):
        data = sends[kind][0]
        pkt, h = first(lambda p, h, mt=mtype, d=data: h.user <= m.CRITICAL_IMPORTANCE and h.mtype == mt
                       and p[h.hsize:h.size] == d, kind)
        golden[kind] = pkt
        # A kernel RDM socket is "unreturnable" (socket.c: tsk_set_unreturnable for connectionless
        # sockets): its messages are dest_droppable; its multicast is src_droppable as well.
        flags = {"dest_droppable": True, "src_droppable": kind == "mcast"}
        assert (h.dest_droppable, h.src_droppable) == tuple(flags.values()), (kind, h)
        if kind == "named":
            built = m.named_msg(h.importance, h.orignode, h.origport, h.destnode, h.destport, RAW_TYPE, inst,
                                data, h.lookup_scope, **flags)
        elif kind == "direct":
            built = m.direct_msg(h.importance, h.orignode, h.origport, h.destnode, h.destport, data, **flags)
        else:
            built = m.mcast_msg(h.importance, h.orignode, h.origport, RAW_TYPE, inst, inst, data, h.lookup_scope,
                                dest_node=h.destnode, dest_port=h.destport, **flags)
        rebuilt = m.with_link_fields(built, ack=h.ack, seqno=h.seqno, bcast_ack=h.bcast_ack, prevnode=h.prevnode)
        assert rebuilt == pkt, (kind, rebuilt.hex(), pkt.hex())

    frags = [(p, h) for p, h in pkts if h.user == m.MSG_FRAGMENTER]
    assert [h.mtype for _p, h in frags] == [m.FIRST_FRAGMENT, m.FRAGMENT, m.LAST_FRAGMENT], frags
    reasm = Reassembler()
    inner = [reasm.append(p) for p, _h in frags][-1]
    assert inner is not None and inner[m.Header.decode(inner).hsize:] == GOLDEN_PAYLOAD
    ours = fragment(inner, len(frags[0][0]))
    assert [m.with_link_fields(o, ack=h.ack, seqno=h.seqno, bcast_ack=h.bcast_ack, prevnode=h.prevnode)
            for o, (_p, h) in zip(ours, frags)] == [p for p, _h in frags]
    for i, (p, _h) in enumerate(frags):
        golden[f"fragment{i + 1}"] = p

    pkt, h = first(lambda p, h: h.user == m.NAME_DISTRIBUTOR and h.mtype == m.PUBLICATION, "publication")
    golden["publication"] = pkt
    built = m.name_distr_msg(m.PUBLICATION, pkt[h.hsize:h.size], h.orignode, h.destnode,
                             non_legacy=bool(h.non_legacy), named_seqno=h.named_seqno)
    assert m.with_link_fields(built, ack=h.ack, seqno=h.seqno, bcast_ack=h.bcast_ack, prevnode=h.prevnode) == pkt
    pkt, h = first(lambda p, h: h.user == m.NAME_DISTRIBUTOR and h.mtype == m.WITHDRAWAL, "withdrawal")
    golden["withdrawal"] = pkt

    for pkt in golden.values():
        h = m.Header.decode(pkt, exact=True)
        assert h.encode() == pkt[:h.hsize]
    if out:
        with open(out, "w") as f:
            f.write(f"# k1 {k1.identity} {k1.addr:08x} {k1.ip}; u1 {u1.identity} {u1.addr:08x} {u1.ip}\n")
            for kind, pkt in golden.items():
                f.write(f"{kind} {pkt.hex()}\n")
