"""The ``tipcrpc`` command on kernel TIPC, checked against iproute2's ``tipc`` (in the guest).

A two-node UDP cluster (``udp_cluster``: one netns per node). ``tipc`` is run in a node's
namespace with ``ip netns exec``; ``tipcrpc`` with ``--netns``. Where ``tipc`` offers JSON
(``tipc -j``) it is compared as JSON, otherwise its text columns are parsed. If the guest
had no ``tipc`` binary, these tests would fail, not skip: the guest image ships it
(``/usr/sbin/tipc``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from tipcrpc.addr import service_type

from ktipc_cluster import UdpCluster, wait_published

HERE = Path(__file__).resolve().parent
DEMO = HERE.parent / "integration"  # cli_demo.py: the service the CLI tests serve
SERVICE = "test.cli.calc"
TIMEOUT_S = 120.0  # Python in the emulated guest is ~10x slower
# Each `tipcrpc` command starts a Python process: 10-25 s in the emulated guest (imports
# dominate), and a test runs up to eight of them.
pytestmark = pytest.mark.timeout(900)


def tipc(netns: str, *args: str) -> str:
    assert shutil.which("tipc"), "iproute2's tipc is missing from the guest image"
    proc = subprocess.run(["ip", "netns", "exec", netns, "tipc", *args], capture_output=True, text=True,
                          timeout=TIMEOUT_S)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def cli(netns: str, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(DEMO), PYTHONUNBUFFERED="1")
    # --timeout: calls in the emulated guest (and its first connections) take seconds, not ms
    proc = subprocess.run([sys.executable, "-m", "tipcrpc", *args, "--transport", "kernel", "--netns", netns,
                           "--timeout", "60"],
                          capture_output=True, text=True, timeout=TIMEOUT_S, env=env)  # fmt: skip
    if ok:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


@pytest.fixture(scope="module")
def served(udp_cluster: UdpCluster) -> Iterator[UdpCluster]:
    """``test.cli.calc`` served on the first node with the command itself."""
    a, b = udp_cluster.nodes
    env = dict(os.environ, PYTHONPATH=str(DEMO), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tipcrpc", "serve", "cli_demo:calc", "--instances", "0-7",
                             "--transport", "kernel", "--netns", a.netns],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith(f"serving {SERVICE}"), (line, proc.stderr.read() if proc.poll() is not None else "")  # type: ignore[union-attr]
        wait_published(b.netns, service_type(SERVICE), {0}, TIMEOUT_S)
        yield udp_cluster
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            assert proc.wait(TIMEOUT_S) == 0, proc.stderr.read()  # type: ignore[union-attr]
        finally:
            if proc.poll() is None:
                proc.kill()


def _row(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["type"], r["lower"], r["upper"], r["scope"], r["port"])


def test_nametable_show_covers_every_row_of_tipc(served: UdpCluster) -> None:
    for node in served.nodes:
        theirs = json.loads(tipc(node.netns, "-j", "nametable", "show"))
        ours = json.loads(cli(node.netns, "nametable", "show", "--json").stdout)
        by_row = {_row(r): r for r in ours}
        for r in theirs:
            assert _row(r) in by_row, f"{node.netns}: tipc shows {r}, tipcrpc does not"
            # tipc names the node by its identity; tipcrpc gives the identity and the address
            assert by_row[_row(r)]["node_identity"] == r["node"], (r, by_row[_row(r)])
        mine = [r for r in ours if r["service"] == SERVICE]
        assert [(r["lower"], r["upper"], r["scope"]) for r in mine] == [(0, 7, "cluster")]
        assert any(r["service"] == "tipcrpc.reflection" for r in ours)
        text = cli(node.netns, "nametable", "show").stdout.splitlines()
        assert text[0].split() == ["Type", "Lower", "Upper", "Scope", "Port", "Node", "Service"]


def test_link_list_and_node_list_agree_with_tipc(served: UdpCluster) -> None:
    for node in served.nodes:
        theirs = {k: v for d in json.loads(tipc(node.netns, "-j", "link", "list")) for k, v in d.items()}
        ours = json.loads(cli(node.netns, "link", "list", "--json").stdout)
        assert {r["name"]: ("up" if r["up"] else "down") for r in ours} == theirs
        assert len(theirs) == 2  # the broadcast link and the link to the other node
        stats = cli(node.netns, "link", "list", "--stats").stdout
        assert "RX packets:" in stats and "Tolerance:500 ms" in stats
        # `tipc node list`: "Node Identity  Hash  State", one row per peer
        rows = [line.split() for line in tipc(node.netns, "node", "list").splitlines()[1:] if line.strip()]
        ours_nodes = json.loads(cli(node.netns, "node", "list", "--json").stdout)
        assert sorted(rows) == sorted([n["identity"], n["address"], "up" if n["up"] else "down"] for n in ours_nodes)
        assert {p.identity for p in served.nodes if p is not node} <= {n["identity"] for n in ours_nodes}


def test_status_node_identity_and_bearer_list(served: UdpCluster) -> None:
    node = served.nodes[0]
    status = json.loads(cli(node.netns, "status", "--json").stdout)
    k = status["kernel"]
    assert (k["available"], k["identity"], k["bearers"], k["links_up"], k["nodes_up"]) == \
        (True, node.identity, ["udp:b1"], 1, 1)  # fmt: skip
    assert status["hints"] == []
    assert cli(node.netns, "node", "get", "identity").stdout.strip() == node.identity
    assert tipc(node.netns, "node", "get", "identity").splitlines()[1].split()[0] == node.identity
    assert tipc(node.netns, "bearer", "list").split() == cli(node.netns, "bearer", "list").stdout.split() == ["udp:b1"]


def test_bearer_enable_and_disable_in_a_fresh_namespace() -> None:
    from pyroute2 import IPRoute, netns

    name = f"clib{os.getpid() % 100000}"
    netns.create(name)
    try:
        with IPRoute(netns=name) as ipr:
            ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
        fresh = json.loads(cli(name, "status", "--json", ok=False).stdout)
        assert fresh["kernel"]["bearers"] == [] and any("no bearer" in h for h in fresh["hints"])
        cli(name, "node", "set", "identity", "cli-fresh")
        cli(name, "node", "set", "netid", "4712")
        assert tipc(name, "node", "get", "netid").split()[-1] == "4712"
        # no --remoteip: discovery by multicast on the netid's group, over lo
        cli(name, "bearer", "enable", "udp", "b9", "--localip", "127.0.0.1")
        assert tipc(name, "bearer", "list").split() == ["udp:b9"]
        assert [b["name"] for b in json.loads(cli(name, "bearer", "list", "--json").stdout)] == ["udp:b9"]
        assert tipc(name, "node", "get", "identity").splitlines()[1].split()[0] == "cli-fresh"
        cli(name, "bearer", "disable", "udp:b9")
        assert tipc(name, "bearer", "list").split() == []
        again = cli(name, "bearer", "disable", "udp:b9", ok=False)  # already gone: the kernel refuses
        assert again.returncode == 1 and again.stderr.startswith("tipcrpc: ") and len(again.stderr.splitlines()) == 1
        bad = cli(name, "bearer", "enable", "udp", "b8", ok=False)  # no --localip
        assert bad.returncode == 2 and "--localip" in bad.stderr
    finally:
        netns.remove(name)


def test_ls_call_ping_watch_across_the_cluster(served: UdpCluster) -> None:
    a, b = served.nodes
    listing = json.loads(cli(b.netns, "ls", "--json").stdout)
    (svc,) = [s for s in listing if s["service"] == SERVICE]
    assert [s["identity"] for s in svc["sockets"]] == [a.identity]
    assert cli(b.netns, "call", SERVICE, "add", "1", "2").stdout == "3\n"
    assert cli(b.netns, "call", SERVICE, "count", "3").stdout == "0\n1\n2\n"
    (row,) = json.loads(cli(b.netns, "ping", SERVICE, "--json").stdout)
    assert row["status"] == "serving" and row["rtt_ms"] > 0
    absent = cli(b.netns, "ping", "test.cli.absent", ok=False)
    assert absent.returncode == 1 and "is published" in absent.stderr and len(absent.stderr.splitlines()) == 1
    links = [json.loads(x) for x in cli(b.netns, "watch", "--links", "--snapshot", "--json").stdout.splitlines()]
    assert {"event": "link_up", "node": f"{a.addr:08x}", "link_id": links[0]["link_id"]} == links[0]
    assert links[-1] == {"event": "snapshot_complete"}
