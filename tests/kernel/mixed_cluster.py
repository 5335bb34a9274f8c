"""Mixed clusters: kernel TIPC nodes and userspace tipcrpc nodes on one UDP network.

Runs inside the ktipc guest. :class:`MixedCluster` puts every node in its own network
namespace, each with a veth to one Linux bridge in the root namespace (10.<subnet>.0.0/24):

* kernel nodes ``k1``, ``k2``: configured with tipcrpc's TIPCv2 netlink module (identity,
  UDP media tolerance, a UDP bearer — replicast to every other node, or multicast
  discovery);
* userspace nodes ``u1``, ``u2``: separate processes (``user_agent_proc.py``) that enter
  their namespace and configure a ``UserTransport`` from the ``TIPCRPC_USER_*`` environment
  only, with a stable identity (``TIPCRPC_USER_IDENTITY``), driven over stdin/stdout
  (:class:`UserAgent`);
* kernel RPC servers (``kernel_node_proc.py``) in ``k1``/``k2``: :class:`KernelServer`.

:class:`Capture` records the UDP payloads (TIPC packets) crossing one node's veth with an
``AF_PACKET`` socket opened in that namespace (tcpdump is not installed in the guest).

Everything waits on events: topology subscriptions (kernel side) or the agents' answers
and events (userspace side); no sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Set, Tuple

from tipcrpc.addr import LINK_STATE, node_addr_from_id
from tipcrpc.transport.kernel import netns as knetns
from tipcrpc.transport.kernel.netlink import TipcNetlink

from ktipc_cluster import wait_published

HERE = Path(__file__).parent
AGENT = HERE / "user_agent_proc.py"
KSERVER = HERE / "kernel_node_proc.py"
UDP_PORT = 6118


def identity_addr(identity: str) -> int:
    return node_addr_from_id(identity.encode().ljust(16, b"\0"))


@dataclass
class MixedNode:
    name: str  #: k1, k2, u1, u2
    netns: str
    identity: str
    ip: str
    ifname: str
    host_ifname: str
    kernel: bool

    @property
    def addr(self) -> int:
        return identity_addr(self.identity)


class _Lines:
    """Reads a child's stdout lines in a thread: answers by id, events in order."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.cond = threading.Condition()
        self.answers: Dict[int, Any] = {}
        self.events: List[Dict[str, Any]] = []
        self.other: List[str] = []
        self.eof = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            with self.cond:
                if line.startswith("R "):
                    _, rid, body = line.split(" ", 2)
                    self.answers[int(rid)] = json.loads(body)
                elif line.startswith("E "):
                    self.events.append(json.loads(line[2:]))
                else:
                    self.other.append(line)
                self.cond.notify_all()
        with self.cond:
            self.eof = True
            self.cond.notify_all()

    def wait(self, pred: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred()
                if got is not None:
                    return got
                if self.eof:
                    raise AssertionError(f"process exited (rc={self.proc.poll()}) while waiting for {what}; "
                                         f"output: {self.other[-5:]}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
                self.cond.wait(remaining)


class UserAgent:
    """A userspace node process (``user_agent_proc.py``) in ``node``'s namespace."""

    def __init__(self, node: MixedNode, env: Dict[str, str], service: str, instance: int, raw: str) -> None:
        self.node = node
        self.proc = subprocess.Popen(
            [sys.executable, str(AGENT), "--netns", node.netns, "--label", node.name, "--service", service,
             "--instance", str(instance), "--raw", raw],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=str(HERE),
        )
        self.lines = _Lines(self.proc)
        self._next_id = 0
        self.ready_addr = 0
        self.port = 0

    def wait_ready(self, timeout: float) -> None:
        def ready() -> Optional[str]:
            return next((ln for ln in self.lines.other if ln.startswith("READY")), None)

        line = self.lines.wait(ready, timeout, f"{self.node.name} READY")
        _, addr, port = line.split()
        self.ready_addr, self.port = int(addr, 16), int(port)

    def request(self, op: str, timeout: float = 60.0, **args: Any) -> Any:
        """Send a command and wait for its answer; raises AssertionError if it failed."""
        rid = self.submit(op, **args)
        return self.result(rid, timeout)

    def submit(self, op: str, **args: Any) -> int:
        self._next_id += 1
        rid = self._next_id
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps({"id": rid, "op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return rid

    def result(self, rid: int, timeout: float) -> Any:
        ans = self.lines.wait(lambda: self.lines.answers.get(rid), timeout, f"{self.node.name} answer {rid}")
        if not ans["ok"]:
            raise AssertionError(f"{self.node.name}: {ans['error']}")
        return ans["value"]

    def wait_event(self, pred: Any, timeout: float, what: str) -> Dict[str, Any]:
        return self.lines.wait(lambda: next((e for e in self.lines.events if pred(e)), None), timeout, what)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


class KernelServer:
    """An RPC server (``kernel_node_proc.py``) on a kernel node; its stdout is read in a thread."""

    def __init__(self, node: MixedNode, service: str, instance: int) -> None:
        self.node = node
        self.proc = subprocess.Popen(
            [sys.executable, str(KSERVER), "--netns", node.netns, "--label", node.name, "--service", service,
             "--instance", str(instance)], stdout=subprocess.PIPE, text=True, cwd=str(HERE),
        )
        self.lines = _Lines(self.proc)

    def wait_ready(self, timeout: float) -> None:
        self.lines.wait(lambda: next((ln for ln in self.lines.other if ln.startswith("READY")), None),
                        timeout, f"{self.node.name} server READY")

    def wait_started(self, timeout: float) -> None:
        """Block until a ``slow`` call runs here (the server prints ``STARTED``)."""
        self.lines.wait(lambda: next((ln for ln in self.lines.other if ln.startswith("STARTED")), None),
                        timeout, f"a slow call on {self.node.name}")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


class Capture:
    """UDP payloads on port 6118 crossing ``ifname`` in ``netns``, read by a thread.

    Each record is ``(monotonic time, src (ip, port), dst (ip, port), payload)``.
    """

    def __init__(self, netns: str, ifname: str) -> None:
        self.sock = knetns.create_socket(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((ifname, 0))
        self.records: List[Tuple[float, Tuple[str, int], Tuple[str, int], bytes]] = []
        self.lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while not self._closed:
            try:
                frame = self.sock.recv(70000)
            except OSError:
                return
            t = time.monotonic()
            # Ethernet II, IPv4, UDP (no VLAN on a veth)
            if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
                continue
            ihl = (frame[14] & 0x0F) * 4
            if struct.unpack_from(">H", frame, 20)[0] & 0x3FFF:
                continue  # an IP fragment: the bearer never sends those below its MTU
            u = 14 + ihl
            sport, dport, ulen = struct.unpack_from(">HHH", frame, u)
            if UDP_PORT not in (sport, dport):
                continue
            src = (socket.inet_ntoa(frame[26:30]), sport)
            dst = (socket.inet_ntoa(frame[30:34]), dport)
            with self.lock:
                self.records.append((t, src, dst, bytes(frame[u + 8:u + ulen])))

    def snapshot(self) -> List[Tuple[float, Tuple[str, int], Tuple[str, int], bytes]]:
        with self.lock:
            return list(self.records)

    def close(self) -> None:
        self._closed = True
        self.sock.close()


@dataclass
class MixedCluster:
    """Two kernel and two userspace nodes on a bridge, UDP bearers (see the module docstring)."""

    discovery: str = "replicast"  #: or "multicast"
    tolerance_ms: int = 1000
    subnet: int = 78
    tag: str = field(default_factory=lambda: f"m{os.getpid() % 100000}")
    nodes: List[MixedNode] = field(default_factory=list)
    agents: Dict[str, UserAgent] = field(default_factory=dict)
    servers: Dict[str, KernelServer] = field(default_factory=dict)
    capture: Optional[Capture] = None

    def __post_init__(self) -> None:
        from pyroute2 import IPRoute, netns

        self.bridge = f"{self.tag}br"
        with IPRoute() as ipr:
            ipr.link("add", ifname=self.bridge, kind="bridge")
            ipr.link("set", index=ipr.link_lookup(ifname=self.bridge)[0], state="up")
            br = ipr.link_lookup(ifname=self.bridge)[0]
            for i, name in enumerate(("k1", "k2", "u1", "u2"), start=1):
                node = MixedNode(name=name, netns=f"{self.tag}{name}", identity=f"{self.tag}{name}",
                                 ip=f"10.{self.subnet}.0.{i}", ifname=f"{self.tag}{name}e",
                                 host_ifname=f"{self.tag}{name}h", kernel=name.startswith("k"))
                netns.create(node.netns)
                ipr.link("add", ifname=node.host_ifname, kind="veth", peer={"ifname": node.ifname})
                ipr.link("set", index=ipr.link_lookup(ifname=node.ifname)[0], net_ns_fd=node.netns)
                ipr.link("set", index=ipr.link_lookup(ifname=node.host_ifname)[0], master=br)
                ipr.link("set", index=ipr.link_lookup(ifname=node.host_ifname)[0], state="up")
                self.nodes.append(node)
        for node in self.nodes:
            with IPRoute(netns=node.netns) as ipr:
                ipr.link("set", index=ipr.link_lookup(ifname="lo")[0], state="up")
                idx = ipr.link_lookup(ifname=node.ifname)[0]
                ipr.addr("add", index=idx, address=node.ip, prefixlen=24)
                ipr.link("set", index=idx, state="up")
                if self.discovery == "multicast":
                    # multicast leaves by the default route; the bridge is the only network
                    ipr.route("add", dst="224.0.0.0", dst_len=4, oif=idx)

    # -- nodes --------------------------------------------------------------------------------

    def node(self, name: str) -> MixedNode:
        return next(n for n in self.nodes if n.name == name)

    @property
    def kernel_nodes(self) -> List[MixedNode]:
        return [n for n in self.nodes if n.kernel]

    @property
    def user_nodes(self) -> List[MixedNode]:
        return [n for n in self.nodes if not n.kernel]

    def enable_kernel_bearer(self, node: MixedNode) -> None:
        others = [n.ip for n in self.nodes if n is not node]
        with TipcNetlink(netns=node.netns) as nl:
            if self.discovery == "replicast":
                nl.enable_bearer("udp:b1", localip=node.ip, remoteip=others[0])
                for ip in others[1:]:
                    nl.add_udp_remote("udp:b1", ip)
            else:
                nl.enable_bearer("udp:b1", localip=node.ip)

    def disable_kernel_bearer(self, node: MixedNode) -> None:
        with TipcNetlink(netns=node.netns) as nl:
            nl.disable_bearer("udp:b1")

    def start_kernel(self, capture_on: str = "k1") -> None:
        """Configure the kernel nodes (capturing on ``capture_on``'s veth from the start)."""
        self.capture = Capture(self.node(capture_on).netns, self.node(capture_on).ifname)
        for node in self.kernel_nodes:
            with TipcNetlink(netns=node.netns) as nl:
                nl.set_identity(node.identity)
                nl.set_media("udp", tolerance_ms=self.tolerance_ms)
            self.enable_kernel_bearer(node)

    def agent_env(self, node: MixedNode) -> Dict[str, str]:
        env = dict(os.environ)
        env.update({
            "TIPCRPC_USER_LOCAL_IP": node.ip,
            "TIPCRPC_USER_PORT": str(UDP_PORT),
            "TIPCRPC_USER_IDENTITY": node.identity,
            "TIPCRPC_TOLERANCE_MS": str(self.tolerance_ms),
            "TIPCRPC_NETID": "4711",
        })
        if self.discovery == "replicast":
            env["TIPCRPC_USER_PEERS"] = ",".join(n.ip for n in self.nodes if n is not node)
        else:
            env["TIPCRPC_USER_MULTICAST"] = "1"
        return env

    def start_agent(self, node: MixedNode, service: str, instance: int, raw: str) -> UserAgent:
        agent = UserAgent(node, self.agent_env(node), service, instance, raw)
        self.agents[node.name] = agent
        return agent

    def start_server(self, node: MixedNode, service: str, instance: int) -> KernelServer:
        server = KernelServer(node, service, instance)
        self.servers[node.name] = server
        return server

    def wait_kernel_links(self, node: MixedNode, peers: Set[int], timeout: float) -> float:
        """Block until ``node`` (kernel) has a working link to every address in ``peers``."""
        t0 = time.monotonic()
        wait_published(node.netns, LINK_STATE, peers, timeout)  # {2, peer}: a link is up
        return time.monotonic() - t0

    def wait_mesh(self, timeout: float) -> None:
        """Every node (kernel and userspace) has a working link to every other node."""
        for node in self.kernel_nodes:
            self.wait_kernel_links(node, {n.addr for n in self.nodes if n is not node}, timeout)
        for name, agent in self.agents.items():
            want = sorted(n.addr for n in self.nodes if n.name != name)
            agent.request("wait_links", timeout=timeout + 5, nodes=want, timeout_s=timeout)

    def destroy(self) -> None:
        from pyroute2 import IPRoute, netns

        for proc in list(self.agents.values()) + list(self.servers.values()):
            proc.kill()
        if self.capture is not None:
            self.capture.close()
        for node in self.nodes:
            try:
                netns.remove(node.netns)
            except OSError:
                pass
        with IPRoute() as ipr:
            for idx in ipr.link_lookup(ifname=self.bridge):
                ipr.link("del", index=idx)


#: The userspace node's counters that tell how a link coped (``Stack.statistics``).
AGENT_LINK_STATS = ("retransmitted", "sent_nacks", "recv_nacks", "deferred_recv", "duplicates", "links_down",
                    "keepalive_stalls", "keepalive_longest_stall_ms")


def link_report(cluster: MixedCluster, kernel: str, agent: str, kmsg_from: int) -> str:
    """What the kernel node and the userspace node say about their links (for failure messages).

    The kernel's unicast links with their non-zero statistics (``tipc link stat show``), the
    agent's link counters and the links it saw go down (with the reason it logged), and the TIPC kernel log lines since
    ``kmsg_from``: a link the kernel took down says why there ("Retransmission failure", "Lost link").
    """
    with TipcNetlink(netns=cluster.node(kernel).netns) as nl:
        links = [ln for ln in nl.links() if not ln.broadcast]
    lines = [f"{kernel} link {ln.name}: up={ln.up} rx={ln.rx} tx={ln.tx} "
             f"{ {k: v for k, v in ln.stats.items() if v} }" for ln in links]
    proc = cluster.agents[agent]
    try:
        st = proc.request("stats", timeout=30)
        lines.append(f"{agent}: { {k: st.get(k) for k in AGENT_LINK_STATS} }")
    except (AssertionError, TimeoutError) as e:
        lines.append(f"{agent}: no stats ({e})")
    with proc.lines.cond:
        downs = [f"{e['t']:.2f}: {e['msg']}" for e in proc.lines.events if e["ev"] == "link_down"]
    lines.append(f"{agent}: links down since it started (monotonic time: reason): {downs}")
    lines += [f"kmsg <{lvl}> {msg}" for lvl, msg in kmsg_since(kmsg_from) if "tipc" in msg.lower()]
    return "\n".join(lines)


def kmsg_position() -> int:
    """The sequence number of the next kernel log record (``/dev/kmsg``)."""
    return max((seq for seq, _lvl, _msg in _kmsg_records()), default=-1) + 1


def kmsg_since(pos: int) -> List[Tuple[int, str]]:
    """Kernel log records from ``pos`` on, as ``(level, message)``."""
    return [(lvl, msg) for seq, lvl, msg in _kmsg_records() if seq >= pos]


def _kmsg_records() -> List[Tuple[int, int, str]]:
    fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    out = []
    try:
        while True:
            try:
                rec = os.read(fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                break
            except BrokenPipeError:  # overwritten while reading: skip
                continue
            head, _, msg = rec.partition(";")
            fields = head.split(",")
            out.append((int(fields[1]), int(fields[0]) & 7, msg.split("\n", 1)[0]))
    finally:
        os.close(fd)
    return out
