"""Service nouns of the ``tipcrpc`` command: ls, call, watch, ping, serve.

They use the public client API only: ``ls`` fans ``describe`` out to every server's
reflection service (:mod:`tipcrpc.rpc.reflection`), ``call`` asks the service's
``tipcrpc.describe`` first so it knows whether the method streams and may be failed over,
``ping`` calls ``tipcrpc.health`` on every instance, ``watch`` is a topology subscription.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import signal
import sys
from time import perf_counter
from typing import Any

import tipcrpc
from tipcrpc.addr import LINK_STATE, U32_MAX, ServiceRange
from tipcrpc.errors import MethodNotFound, RpcError, ServiceUnreachable, Status, UsageError
from tipcrpc.events import (
    LinkDown,
    LinkUp,
    NodeDown,
    NodeUp,
    Published,
    ServiceDown,
    ServiceUp,
    SnapshotComplete,
    Withdrawn,
)
from tipcrpc.rpc.reflection import DESCRIBE, HEALTH, REFLECTION

from .output import emit_json, hexaddr, json_line, table
from .session import client_of, make_transport, transport_kind

__all__ = ["ls", "call", "watch", "ping", "serve", "service_arg", "parse_value", "parse_kwargs", "load_services",
           "parse_instances"]

_TARGET = re.compile(r"^(\d+)(?::(\d+)(?::(\d+))?)?$")


def service_arg(text: str) -> str | int:
    """A service given on the command line: a type number if all digits, else a name."""
    return int(text) if text.isdigit() else text


def _unreachable(service: str | int) -> ServiceUnreachable:
    return ServiceUnreachable(f"no instance of {service!r} is published; `tipcrpc ls` lists the services served")


# -- ls -------------------------------------------------------------------------------------


def ls(args: Any) -> int:
    services = asyncio.run(_ls(args))
    if args.service is not None and not services:
        raise ServiceUnreachable(f"no server serves {args.service!r}; `tipcrpc ls` lists the services served")
    if args.json:
        emit_json(services)
        return 0
    if not services:
        print("no tipcrpc server found (start one with `tipcrpc serve module:service`)")
        return 0
    for s in services:
        print(f"{s['service']}  (type {s['type']}, {len(s['sockets'])} socket{'s' * (len(s['sockets']) != 1)})")
        for sk in s["sockets"]:
            inst = ", ".join(_range_text(lo, hi) for lo, hi in sk["instances"])
            print(f"  instance {inst} at <{sk['node']}:{sk['port']}> {sk['scope']} scope, {sk['status']}")
        width = max((len(m["name"] + m["signature"]) for m in s["methods"]), default=0)
        for m in s["methods"]:
            flags = [f for f, on in (("idempotent", m["idempotent"]), ("streaming", m["streaming"])) if on]
            if m["importance"] != "low":
                flags.append(f"importance {m['importance']}")
            line = f"  {(m['name'] + m['signature']).ljust(width)}"
            if flags:
                line += "  [" + ", ".join(flags) + "]"
            if m["doc"]:
                line += f"  # {m['doc']}"
            print(line.rstrip())
    return 0


def _range_text(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}..{hi}"


async def _ls(args: Any) -> list[dict[str, Any]]:
    async with client_of(args) as (_t, client):
        try:
            results = await client.options(timeout=args.timeout).call_all(REFLECTION, "describe", args.service)
        except ServiceUnreachable:
            return []
    merged: dict[str, dict[str, Any]] = {}
    for r in results:
        if r.error is not None:
            continue  # a server that left meanwhile, or refused (draining): ping reports those
        d = r.value
        for svc in d["services"]:
            entry = merged.setdefault(svc["service"], {"service": svc["service"], "type": svc["type"],
                                                         "methods": svc["methods"], "sockets": []})  # fmt: skip
            entry["sockets"].append({"node": hexaddr(d["node"]), "port": d["port"], "identity": d["identity"],
                                     "status": d["status"], "scope": svc["scope"],
                                     "instances": svc["instances"]})  # fmt: skip
    for entry in merged.values():
        entry["sockets"].sort(key=lambda s: (s["instances"], int(s["node"], 16), s["port"]))
    return [merged[k] for k in sorted(merged)]


# -- call -----------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    """A command-line argument: JSON if it parses (``3``, ``"x"``, ``[1,2]``, ``{"a":1}``,
    ``true``, ``null``), else the text itself as a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_kwargs(items: list[str]) -> dict[str, Any]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--kw takes NAME=VALUE (VALUE as JSON), got {item!r}")
        out[key] = parse_value(value)
    return out


def call(args: Any) -> int:
    return asyncio.run(_call(args))


async def _call(args: Any) -> int:
    service = service_arg(args.service)
    values = [parse_value(a) for a in args.args]
    kwargs = parse_kwargs(args.kw)
    route: dict[str, Any] = {"timeout": args.timeout}
    if args.instance is not None:
        route["instance"] = args.instance
    if args.key is not None:
        route["key"] = parse_value(args.key)
    async with client_of(args) as (_t, client):
        try:
            described = await client.options(**route).call(service, DESCRIBE)
        except MethodNotFound:
            described = None  # a server without reflection: call blind
        except ServiceUnreachable:
            raise _unreachable(service) from None
        info = None
        if described is not None:
            methods = {m["name"]: m for m in described["methods"]}
            info = methods.get(args.method)
            if info is None:
                raise MethodNotFound(f"{described['service']} has no method {args.method!r}; it has: "
                                     f"{', '.join(sorted(methods)) or '(none)'}")  # fmt: skip
        idempotent = info["idempotent"] if info is not None else None
        if info is not None and info["streaming"]:
            caller = client.options(idempotent=idempotent, **route)
            async with caller.stream(service, args.method, *values, **kwargs) as items:
                async for item in items:
                    print(json_line(item), flush=True)
            return 0
        result = await client.options(idempotent=idempotent, **route).call(service, args.method, *values, **kwargs)
        print(json.dumps(result, sort_keys=True, default=lambda v: v.hex() if isinstance(v, bytes) else repr(v)))
    return 0


# -- watch ----------------------------------------------------------------------------------


def watch(args: Any) -> int:
    try:
        return asyncio.run(_watch(args))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how a watch normally ends


def _event_row(ev: Any) -> dict[str, Any] | None:
    if isinstance(ev, SnapshotComplete):
        return {"event": "snapshot_complete"}
    if isinstance(ev, (ServiceUp, ServiceDown)):
        return {"event": "up" if isinstance(ev, ServiceUp) else "down", "service": ev.service, "type": ev.type,
                "lower": ev.lower, "upper": ev.upper, "node": hexaddr(ev.node), "port": ev.port}  # fmt: skip
    if isinstance(ev, (Published, Withdrawn)):
        return {"event": "up" if isinstance(ev, Published) else "down", "type": ev.range.type,
                "lower": ev.range.lower, "upper": ev.range.upper, "node": hexaddr(ev.socket.node),
                "port": ev.socket.port}  # fmt: skip
    if isinstance(ev, (NodeUp, NodeDown)):
        return {"event": "node_up" if isinstance(ev, NodeUp) else "node_down", "node": hexaddr(ev.node)}
    if isinstance(ev, (LinkUp, LinkDown)):
        return {"event": "link_up" if isinstance(ev, LinkUp) else "link_down", "node": hexaddr(ev.node),
                "link_id": ev.link_id}  # fmt: skip
    return None


def _event_text(row: dict[str, Any]) -> str:
    kind = row["event"]
    if kind == "snapshot_complete":
        return "-- current state above, live changes below --"
    if "port" in row:
        name = row.get("service") or str(row["type"])
        return f"{kind:<4}  {name} {{{row['type']},{row['lower']},{row['upper']}}} at <{row['node']}:{row['port']}>"
    if "link_id" in row:
        return f"{kind:<9}  node {row['node']} link {row['link_id']}"
    return f"{kind:<9}  node {row['node']}"


async def _watch(args: Any) -> int:
    if sum(map(bool, (args.target, args.nodes, args.links))) != 1:
        raise UsageError("watch takes one of: SERVICE, TYPE[:LOWER[:UPPER]], --nodes, --links")
    async with client_of(args) as (transport, client):
        if args.nodes:
            source: Any = client.watch_nodes()
        elif args.links:
            source = await transport.subscribe(ServiceRange(LINK_STATE, 0, U32_MAX))
        else:
            m = _TARGET.match(args.target)
            if m is not None:
                stype = int(m.group(1))
                lower = int(m.group(2)) if m.group(2) is not None else 0
                upper = int(m.group(3)) if m.group(3) is not None else (lower if m.group(2) is not None else U32_MAX)
                source = await transport.subscribe(ServiceRange(stype, lower, upper))
            else:
                source = client.watch(args.target)
        changes, live = 0, False
        async with source:
            async for ev in source:
                row = _event_row(ev)
                if row is None:
                    continue
                print(json_line(row) if args.json else _event_text(row), flush=True)
                if row["event"] == "snapshot_complete":
                    if args.snapshot:
                        return 0
                    live = True
                    continue
                changes += live
                if args.count is not None and changes >= args.count:
                    return 0
    return 0


# -- ping -----------------------------------------------------------------------------------


def ping(args: Any) -> int:
    rows = asyncio.run(_ping(args))
    if args.json:
        emit_json(rows)
    else:
        table(["Service", "Instances", "Socket", "Status", "RTT"],
              [(r["service"], ", ".join(_range_text(lo, hi) for lo, hi in [r["instances"]]),
                f"<{r['node']}:{r['port']}>", r["status"] if r["error"] is None else f"{r['status']}: {r['error']}",
                "" if r["rtt_ms"] is None else f"{r['rtt_ms']:.2f} ms") for r in rows])  # fmt: skip
    return 0 if rows and all(r["status"] == "serving" for r in rows) else 1


async def _ping(args: Any) -> list[dict[str, Any]]:
    service = service_arg(args.service)
    route: dict[str, Any] = {"timeout": args.timeout}
    if args.instance is not None:
        route["instance"] = args.instance
    async with client_of(args) as (_t, client):
        try:
            results = await client.options(**route).call_all(service, HEALTH)
        except ServiceUnreachable:
            raise _unreachable(service) from None
        rows: dict[tuple[int, int], dict[str, Any]] = {}
        for r in results:
            row = {"service": str(service), "instances": [r.range.lower, r.range.upper], "node": hexaddr(r.socket.node),
                   "port": r.socket.port, "status": "serving", "rtt_ms": None, "error": None}  # fmt: skip
            if r.error is not None:
                draining = isinstance(r.error, RpcError) and r.error.status == Status.SHUTTING_DOWN
                row["status"] = "draining" if draining else "unreachable"
                row["error"] = None if draining else str(r.error)
            else:
                row["status"] = r.value["status"]
            rows[(r.socket.node, r.socket.port)] = row
        # Round trips one socket at a time: round-robin calls reach each socket in turn.
        serving = {k for k, row in rows.items() if row["error"] is None}
        for _ in range(2 * len(serving)):
            if all(rows[k]["rtt_ms"] is not None for k in serving):
                break
            t0 = perf_counter()
            try:
                h = await client.options(idempotent=True, **route).call(service, HEALTH)
            except tipcrpc.TipcRpcError:
                break
            rtt = (perf_counter() - t0) * 1000.0
            hit = rows.get((h["node"], h["port"]))
            if hit is not None and hit["rtt_ms"] is None:
                hit["rtt_ms"] = rtt
    return [rows[k] for k in sorted(rows)]


# -- serve ----------------------------------------------------------------------------------


def load_services(spec: str) -> list[tipcrpc.Service[Any]]:
    """``module:attr`` (a Service, or an iterable of them) or ``module`` (every Service in it)."""
    module_name, _sep, attr = spec.partition(":")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to where you stand
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"cannot import {module_name!r} ({exc}); give a module importable from here") from None
    if attr:
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise UsageError(f"module {module_name!r} has no attribute {attr!r}") from None
        found = [obj] if isinstance(obj, tipcrpc.Service) else list(obj) if isinstance(obj, (list, tuple)) else []
    else:
        found = [v for v in vars(module).values() if isinstance(v, tipcrpc.Service)]
    if not found or not all(isinstance(s, tipcrpc.Service) for s in found):
        raise UsageError(f"{spec!r} names no tipcrpc.Service (give module:attr of a Service or a list of them)")
    return found


def parse_instances(text: str) -> range:
    lo, sep, hi = text.partition("-")
    try:
        lower, upper = int(lo), int(hi if sep else lo)
    except ValueError:
        raise UsageError(f"--instances takes LOWER-UPPER (inclusive), got {text!r}") from None
    if not 0 <= lower <= upper <= U32_MAX:
        raise UsageError(f"--instances {text!r}: need 0 <= LOWER <= UPPER <= {U32_MAX}")
    return range(lower, upper + 1)


def serve(args: Any) -> int:
    services = load_services(args.target)
    if args.instance is not None and args.instances is not None:
        raise UsageError("pass either --instance or --instances, not both")
    instances = parse_instances(args.instances) if args.instances is not None else None
    try:
        return asyncio.run(_serve(args, services, instances))
    except KeyboardInterrupt:
        return 0


async def _serve(args: Any, services: list[tipcrpc.Service[Any]], instances: range | None) -> int:
    kind = transport_kind(args)
    transport = make_transport(args, kind, identity=None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with transport:
        async with tipcrpc.serve(*services, instance=args.instance, instances=instances, scope=args.scope,
                                 transport=transport, drain_timeout=args.drain_timeout) as server:  # fmt: skip
            exporter = None
            if args.metrics_port is not None:
                from tipcrpc.exporter import start_exporter

                exporter = await start_exporter([server], host=args.metrics_host, port=args.metrics_port)
            names = ", ".join(f"{s.name} {{{n.type},{_range_text(n.lower, n.upper)}}}"
                              for s, n in zip(services, server.names) if isinstance(n, ServiceRange))  # fmt: skip
            where = f"<{hexaddr(server.address.node)}:{server.address.port}>"
            extra = f"; metrics on http://{args.metrics_host}:{exporter.port}/metrics" if exporter else ""
            print(f"serving {names} at {where} on the {kind} transport "
                  f"(node {transport.own_node.identity}){extra}", flush=True)  # fmt: skip
            try:
                await stop.wait()
            finally:
                print("draining", flush=True)
                if exporter is not None:
                    await exporter.aclose()
    return 0
