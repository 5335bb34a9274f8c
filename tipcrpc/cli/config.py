"""Node-level nouns of the ``tipcrpc`` command: status, node, bearer, link, nametable.

On the kernel transport these read and change the host's TIPC node through generic
netlink (:mod:`tipcrpc.transport.kernel.netlink`), as iproute2's ``tipc`` does, and print
the same columns. On the userspace transport the command's own short-lived node reports
what it sees of the cluster (nodes, links and the replicated name table); settings that
belong to a particular process's node (identity, bearers) cannot be changed from outside
it, and the command says how to set them instead.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from tipcrpc.api import user_options_from_env
from tipcrpc.addr import LINK_STATE, NODE_STATE, TOP_SRV, U32_MAX, ServiceRange
from tipcrpc.errors import TipcRpcError, UsageError
from tipcrpc.events import LinkUp, NodeUp, SnapshotComplete
from tipcrpc.rpc.reflection import REFLECTION, REFLECTION_TYPE

from .output import emit_json, hexaddr, table
from .session import joined, transport_kind

_SCOPES = {1: "zone", 2: "cluster", 3: "node"}  # TIPC_ZONE_SCOPE.. as `tipc nametable show`
_USER_ONLY_HINT = ("on the userspace transport every process is its own node: set its identity and bearer "
                   "where it is created (UserTransport(identity=..., local_ip=..., peers=...) or "
                   "TIPCRPC_USER_LOCAL_IP / TIPCRPC_USER_PEERS / TIPCRPC_NETID)")  # fmt: skip


class _Netlink:
    """Generic netlink for one command, used like ``TipcNetlink`` (``with _netlink(args) as
    nl: nl.net()``), each operation on a fresh :class:`AsyncTipcNetlink` under
    :func:`asyncio.run`. pyroute2's synchronous socket (``TipcNetlink``) never returned in
    the command's process inside the test guest; the asyncio one does."""

    def __init__(self, netns: str | None) -> None:
        self.netns = netns

    def __enter__(self) -> _Netlink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass

    def __getattr__(self, op: str) -> Any:
        from tipcrpc.transport.kernel.netlink import AsyncTipcNetlink

        async def run(*args: Any, **kwargs: Any) -> Any:
            nl = AsyncTipcNetlink(netns=self.netns)
            try:
                return await getattr(nl, op)(*args, **kwargs)
            finally:
                nl.close()

        return lambda *args, **kwargs: asyncio.run(run(*args, **kwargs))


def _netlink(args: Any) -> _Netlink:
    return _Netlink(args.netns)


def _kernel_only(args: Any, what: str) -> None:
    if transport_kind(args) != "kernel":
        raise UsageError(f"`tipcrpc {what}` changes kernel TIPC; {_USER_ONLY_HINT}")


# -- status ---------------------------------------------------------------------------------


def status(args: Any) -> int:
    """Is TIPC usable here, and how is this node set up; what to do if not."""
    from tipcrpc.transport.kernel.probe import probe

    kind = transport_kind(args)
    p = probe(args.netns)
    info: dict[str, Any] = {"transport": kind, "kernel": {"available": p.available, "reason": p.reason or None}}
    hints: list[str] = []
    if p.available:
        with _netlink(args) as nl:
            net = nl.net()
            bearers = nl.bearers()
            links = [lk for lk in nl.links() if not lk.broadcast]
            nodes = nl.nodes()
        info["kernel"].update(
            identity=net.identity, address=hexaddr(net.addr), netid=net.netid,
            bearers=[b.name for b in bearers], links_up=sum(lk.up for lk in links), links=len(links),
            nodes_up=sum(n.up for n in nodes if n.addr != net.addr),
        )  # fmt: skip
        if not bearers:
            hints.append("no bearer: enable one, e.g. `tipcrpc bearer enable udp b1 --localip <this host's IP>` "
                         "or `tipcrpc bearer enable eth <ifname>`")  # fmt: skip
        elif not links:
            hints.append("bearers are up but no link: check that peers use the same netid and bearer media")
    else:
        hints.append(p.reason)
    if kind == "user":
        info["user"] = asyncio.run(_user_status(args))
        if not info["user"]["peers"]:
            hints.append("no userspace peer found: start a server (`tipcrpc serve module:service`), or set "
                         "TIPCRPC_USER_PEERS/TIPCRPC_USER_LOCAL_IP for nodes on other hosts")  # fmt: skip
    info["hints"] = hints
    if args.json:
        emit_json(info)
    else:
        print(f"transport: {kind}")
        k = info["kernel"]
        if k["available"]:
            print(f"kernel TIPC: available; identity {k['identity'] or '(none)'}, address {k['address']}, "
                  f"netid {k['netid']}")  # fmt: skip
            print(f"  bearers: {', '.join(k['bearers']) or '(none)'}; links up: {k['links_up']}/{k['links']}; "
                  f"peer nodes up: {k['nodes_up']}")  # fmt: skip
        else:
            print("kernel TIPC: not available")
        if "user" in info:
            u = info["user"]
            print(f"userspace node: {u['identity']} address {u['address']} on udp {u['bearer']}, netid {u['netid']}; "
                  f"peers up: {len(u['peers'])}")  # fmt: skip
        for h in hints:
            print(f"hint: {h}")
    usable = p.available or kind == "user"
    return 0 if usable else 3


async def _user_status(args: Any) -> dict[str, Any]:
    async with joined(args) as t:
        nodes = await _node_events(t)
        return {"identity": t.own_node.identity, "address": hexaddr(t.own_node.addr),
                "bearer": "%s:%d" % cast(Any, t).local_media, "netid": user_options_from_env().get("netid", 4711),
                "peers": [hexaddr(n) for n in nodes if n != t.own_node.addr]}  # fmt: skip


async def _snapshot(t: Any, stype: int) -> list[Any]:
    out = []
    async with await t.subscribe(ServiceRange(stype, 0, U32_MAX)) as sub:
        async for ev in sub:
            if isinstance(ev, SnapshotComplete):
                break
            out.append(ev)
    return out


async def _node_events(t: Any) -> list[int]:
    return sorted({ev.node for ev in await _snapshot(t, NODE_STATE) if isinstance(ev, NodeUp)})


# -- node -----------------------------------------------------------------------------------


def node_list(args: Any) -> int:
    if transport_kind(args) == "kernel":
        # the kernel's node dump, as `tipc node list` prints it (peers; this node is not in it)
        from tipcrpc.transport.kernel.probe import node_identities

        with _netlink(args) as nl:
            nodes = nl.nodes()
        ids = node_identities([n.addr for n in nodes], args.netns)
        rows = [{"identity": ids.get(n.addr, ""), "address": hexaddr(n.addr), "up": n.up} for n in nodes]
    else:
        rows = asyncio.run(_user_nodes(args))
    rows.sort(key=lambda r: int(r["address"], 16))
    if args.json:
        emit_json(rows)
    else:
        table(["Node Identity", "Hash", "State"],
              [(r["identity"] or "-", r["address"], "up" if r["up"] else "down") for r in rows])  # fmt: skip
    return 0


def _peer_identities(t: Any) -> dict[int, str]:
    """The userspace node's peers' identities, rendered as `tipc` renders a node id (the
    identity string when it is one, else hex): learned from their discovery messages."""
    from tipcrpc.transport.kernel.wire import nodeid_to_identity

    return {addr: nodeid_to_identity(p.identity) for addr, p in t.peers().items()}


async def _user_nodes(args: Any) -> list[dict[str, Any]]:
    # peers only, like the kernel's list: the ones up (topology) and those known but down
    async with joined(args) as t:
        own = t.own_node.addr
        peers = cast(Any, t).peers()  # the userspace transport's own view of its peers
        ids = _peer_identities(t)
        up = {n for n in await _node_events(t) if n != own}
        return [{"identity": ids.get(n, ""), "address": hexaddr(n), "up": n in up or (n in peers and peers[n].up)}
                for n in sorted(up | set(peers))]  # fmt: skip


def node_get_identity(args: Any) -> int:
    if transport_kind(args) == "kernel":
        with _netlink(args) as nl:
            net = nl.net()
        value = {"identity": net.identity, "address": hexaddr(net.addr), "netid": net.netid}
    else:
        raise UsageError(f"`node get identity` reads kernel TIPC; {_USER_ONLY_HINT}")
    if args.json:
        emit_json(value)
    else:
        print(value["identity"])
    return 0


def node_set_identity(args: Any) -> int:
    _kernel_only(args, "node set identity")
    with _netlink(args) as nl:
        nl.set_identity(args.identity)
    return 0


def node_set_netid(args: Any) -> int:
    _kernel_only(args, "node set netid")
    with _netlink(args) as nl:
        nl.set_netid(args.netid)
    return 0


# -- bearer ---------------------------------------------------------------------------------


def bearer_enable(args: Any) -> int:
    _kernel_only(args, "bearer enable")
    name = f"{args.media}:{args.name}"
    opts: dict[str, Any] = {}
    if args.media == "udp":
        if not args.localip:
            raise UsageError("a udp bearer needs --localip (this host's IP address on the cluster's network)")
        opts.update(localip=args.localip, localport=args.localport, remoteport=args.remoteport)
        if args.remoteip:
            opts["remoteip"] = args.remoteip
    elif args.localip or args.remoteip:
        raise UsageError("--localip/--remoteip apply to udp bearers only")
    if args.priority is not None:
        opts["priority"] = args.priority
    with _netlink(args) as nl:
        nl.enable_bearer(name, **opts)
    return 0


def bearer_disable(args: Any) -> int:
    _kernel_only(args, "bearer disable")
    name = args.name if ":" in args.name else f"{args.media}:{args.name}" if args.media else args.name
    if ":" not in name:
        raise UsageError(f"name the bearer as <media>:<name> (eth:eth0, udp:b1), got {args.name!r}")
    with _netlink(args) as nl:
        nl.disable_bearer(name)
    return 0


def bearer_list(args: Any) -> int:
    if transport_kind(args) == "kernel":
        with _netlink(args) as nl:
            rows = [{"name": b.name, "priority": b.priority, "tolerance_ms": b.tolerance_ms, "window": b.window,
                     "mtu": b.mtu} for b in nl.bearers()]  # fmt: skip
    else:
        rows = asyncio.run(_user_bearer(args))
    if args.json:
        emit_json(rows)
    else:
        for r in rows:
            print(r["name"])
    return 0


async def _user_bearer(args: Any) -> list[dict[str, Any]]:
    async with joined(args) as t:
        ip, port = cast(Any, t).local_media  # the userspace transport's UDP bearer
        return [{"name": f"udp:{ip}:{port}", "priority": None, "tolerance_ms": None, "window": None, "mtu": None,
                 "note": "this command's own short-lived node"}]  # fmt: skip


# -- link -----------------------------------------------------------------------------------


def link_list(args: Any) -> int:
    if transport_kind(args) == "kernel":
        with _netlink(args) as nl:
            rows = [{"name": lk.name, "up": lk.up, "active": lk.active, "broadcast": lk.broadcast, "mtu": lk.mtu,
                     "priority": lk.priority, "tolerance_ms": lk.tolerance_ms, "window": lk.window,
                     "rx": lk.rx, "tx": lk.tx, "stats": dict(lk.stats)} for lk in nl.links()]  # fmt: skip
    else:
        rows = asyncio.run(_user_links(args))
    if not args.stats:
        for r in rows:
            for k in ("rx", "tx", "stats"):
                r.pop(k, None)
    if args.json:
        emit_json(rows)
    elif args.stats:
        for r in rows:
            print(f"Link <{r['name']}>")
            print(f"  {'ACTIVE' if r['active'] else 'STANDBY' if r['up'] else 'DEFUNCT'}  MTU:{r['mtu']}  "
                  f"Priority:{r['priority']}  Tolerance:{r['tolerance_ms']} ms  Window:{r['window']} packets")
            print(f"  RX packets:{r['rx']}  TX packets:{r['tx']}")
            stats = r.get("stats") or {}
            if stats:
                print("  " + "  ".join(f"{k}:{v}" for k, v in sorted(stats.items())))
    else:
        table(["Link", "State"], [(r["name"], "up" if r["up"] else "down") for r in rows])
    return 0


async def _user_links(args: Any) -> list[dict[str, Any]]:
    async with joined(args) as t:
        own = t.own_node
        events = [ev for ev in await _snapshot(t, LINK_STATE) if isinstance(ev, LinkUp)]
        rows = [{"name": "broadcast-link", "up": True, "active": True, "broadcast": True, "mtu": None,
                 "priority": None, "tolerance_ms": None, "window": None}]  # fmt: skip
        for ev in sorted(events, key=lambda e: e.node):
            rows.append({"name": f"{hexaddr(own.addr)}:udp-{hexaddr(ev.node)}:udp", "up": True, "active": True,
                         "broadcast": False, "mtu": None, "priority": None, "tolerance_ms": None, "window": None,
                         "peer": hexaddr(ev.node)})  # fmt: skip
        return rows


# -- nametable ------------------------------------------------------------------------------


def nametable_show(args: Any) -> int:
    rows = asyncio.run(_nametable(args))
    if args.json:
        emit_json(rows)
    else:
        table(["Type", "Lower", "Upper", "Scope", "Port", "Node", "Service"],
              [(r["type"], r["lower"], r["upper"], r["scope"], r["port"], r["node_identity"] or r["node"],
                r["service"] or "") for r in rows])  # fmt: skip
    return 0


_KNOWN = {NODE_STATE: "(node state)", TOP_SRV: "(topology server)", LINK_STATE: "(link state)",
          REFLECTION_TYPE: REFLECTION}  # fmt: skip


async def _nametable(args: Any) -> list[dict[str, Any]]:
    import tipcrpc

    async with joined(args) as t:
        if t.kind == "kernel":
            from tipcrpc.transport.kernel.netlink import AsyncTipcNetlink
            from tipcrpc.transport.kernel.probe import node_identities

            nl = AsyncTipcNetlink(netns=args.netns)
            try:
                pubs = [(p.type, p.lower, p.upper, p.scope, p.port, p.node) for p in await nl.name_table()]
            finally:
                nl.close()
            identities = node_identities({p[5] for p in pubs}, args.netns)
        else:
            identities = {**_peer_identities(t), t.own_node.addr: t.own_node.identity}
            # the userspace node's scope numbers are the kernel's (TIPC_CLUSTER_SCOPE=2, NODE=3)
            pubs = [(p.type, p.lower, p.upper, p.scope, p.port, p.node) for p in t.name_table()]  # type: ignore[attr-defined]
        names = dict(_KNOWN)
        if args.names and any(p[0] == REFLECTION_TYPE for p in pubs):
            try:
                async with tipcrpc.connect(t) as client:
                    for r in await client.options(timeout=args.timeout).call_all(REFLECTION, "describe"):
                        for svc in (r.value or {}).get("services", []) if r.error is None else []:
                            names[svc["type"]] = svc["service"]
            except TipcRpcError as exc:  # names are a courtesy: the table is printed without them
                logging.getLogger("tipcrpc.cli").warning("service names unavailable: %s", exc)
    return [{"type": ty, "lower": lo, "upper": up, "scope": _SCOPES.get(sc, str(sc)), "port": port,
             "node": hexaddr(node), "node_identity": identities.get(node) or None, "service": names.get(ty)}
            for ty, lo, up, sc, port, node in pubs]  # fmt: skip


__all__ = ["status", "node_list", "node_get_identity", "node_set_identity", "node_set_netid", "bearer_enable",
           "bearer_disable", "bearer_list", "link_list", "nametable_show"]  # fmt: skip
