"""A userspace TIPC node process inside a network namespace, driven over stdin/stdout.

    python user_agent_proc.py --netns NS --label LABEL --service NAME [--instance N]
                              [--raw TYPE:INSTANCE]

The process enters network namespace NS first (``setns`` before any socket exists), then
opens a :class:`~tipcrpc.transport.user.UserTransport` configured only through the
environment, exactly as ``transport="user"`` would be (``TIPCRPC_USER_LOCAL_IP``,
``TIPCRPC_USER_PEERS``, ``TIPCRPC_USER_IDENTITY``, ``TIPCRPC_TOLERANCE_MS``, ...: see
:func:`tipcrpc.api.user_options_from_env`). It serves ``NAME`` (the methods of
``kernel_node_proc.build_service``) at instance N and, with ``--raw``, a raw endpoint that
reports every datagram it receives (kernel multicast lands there).

Output lines (the test's synchronisation points; times are ``time.monotonic()``, which is
system-wide, so the test compares them with its own clock):

* ``READY <node hex> <port>`` once serving;
* ``R <id> <json>`` the answer to command ``<id>``;
* ``E <json>`` an event: ``{"ev": "node", "up": bool, "node": int, "t": float}``,
  ``{"ev": "raw", "data": hex, "src": [node, port]}``, ``{"ev": "started"}`` (a ``slow`` call
  is running here), ``{"ev": "link_down", "msg": str, "t": float}`` (the transport's log line
  giving the reason a link went down).

Commands are JSON lines ``{"id": n, "op": ..., ...}``; see :func:`_run` for the ops.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import hashlib
import json
import os
import random
import signal
import sys
import threading
import time
from typing import Any

from pyroute2 import netns as pnetns


def _enter(ns: str) -> None:
    pnetns.setns(ns, flags=0)  # flags=0: the namespace must exist


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def payload(size: int, seed: int) -> bytes:
    """The deterministic payload both sides of a size test use."""
    return random.Random(seed).randbytes(size)


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--netns", required=True)
    ap.add_argument("--label", required=True)
    ap.add_argument("--service", required=True)
    ap.add_argument("--instance", type=int, default=0)
    ap.add_argument("--raw", default=None, help="TYPE:INSTANCE of a raw endpoint reporting what it receives")
    args = ap.parse_args()

    import tipcrpc
    from tipcrpc.addr import ServiceAddr, ServiceRange
    from tipcrpc.api import user_options_from_env
    from tipcrpc.transport.base import Delivery
    from tipcrpc.transport.user import UserTransport

    from kernel_node_proc import build_service

    _report_link_downs()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    svc = build_service(args.service, args.label)
    commands: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            if line.strip():
                loop.call_soon_threadsafe(commands.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(commands.put_nowait, None)

    async with UserTransport(**user_options_from_env()) as t:
        raw_ep = None
        if args.raw:

            def on_raw(item: Any) -> None:
                if isinstance(item, Delivery):
                    _out("E " + json.dumps({"ev": "raw", "data": item.data.hex(),
                                            "src": [item.source.node, item.source.port]}))

            raw_ep = await t.open_endpoint(on_raw)
            rtype, rinst = (int(x) for x in args.raw.split(":"))
            await raw_ep.publish(ServiceAddr(rtype, rinst))

        async def watch_nodes() -> None:
            async with await t.subscribe(ServiceRange(0, 0, 0xFFFFFFFF)) as sub:
                async for ev in sub:
                    if isinstance(ev, (tipcrpc.NodeUp, tipcrpc.NodeDown)):
                        _out("E " + json.dumps({"ev": "node", "up": isinstance(ev, tipcrpc.NodeUp),
                                                "node": ev.node, "t": time.monotonic()}))

        async with tipcrpc.serve(svc, instance=args.instance, transport=t, drain_timeout=2.0) as server, \
                tipcrpc.connect(t) as client:
            watcher = asyncio.ensure_future(watch_nodes())
            threading.Thread(target=read_stdin, daemon=True).start()
            _out(f"READY {t.own_node.addr:08x} {server.address.port}")
            faulthandler.cancel_dump_traceback_later()
            tasks: set[asyncio.Future[None]] = set()
            stopper = asyncio.ensure_future(stop.wait())
            while True:
                getter = asyncio.ensure_future(commands.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if stopper in done:
                    getter.cancel()
                    break
                cmd = getter.result()
                if cmd is None:
                    break
                task = asyncio.ensure_future(_run(cmd, t, client, raw_ep))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            for task in tasks:
                task.cancel()
            watcher.cancel()
            stopper.cancel()
    _out("CLOSED")
    return 0


def _report_link_downs() -> None:
    """Report the transport's "link down to node X: <reason>" log lines as ``link_down`` events."""
    import logging

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            msg = record.getMessage()
            if "link down" in msg:
                _out("E " + json.dumps({"ev": "link_down", "msg": msg, "t": time.monotonic()}))

    logger = logging.getLogger("tipcrpc.user")
    logger.addHandler(Handler(logging.INFO))
    logger.setLevel(logging.INFO)


async def _run(cmd: dict[str, Any], t: Any, client: Any, raw_ep: Any) -> None:
    """One command; always answers ``R <id> {"ok": ..., ...}``.

    Ops (``call_timeout`` is the call's deadline): ``call`` (service, method, args, instance,
    call_timeout) -> value; ``call_all`` (service, method, call_timeout) -> sorted values;
    ``echo`` (service, size, seed, instance, call_timeout) -> seconds, after checking the
    echoed bytes; ``slow_many`` (service, n, seconds, call_timeout) -> the labels
    that answered ``n`` concurrent ``slow`` calls; ``many`` (service, method, n, instance,
    call_timeout) -> the values of ``n`` concurrent calls; ``mcast`` (type, lower, upper, data hex)
    sends one multicast datagram from the raw endpoint; ``names`` (type) -> this node's
    view of the name table for that type, ``[[lower, upper, node, port], ...]``;
    ``nodes`` -> the nodes it sees up (itself included); ``links`` -> the peers it has a
    working link to; ``wait_links`` (nodes,
    timeout_s) and ``wait_names`` (type, instances, timeout_s) wait until the node's view
    holds them (seconds); ``wait_gone`` (type, instance, timeout_s) until it no longer does; ``soak`` (service, instances, seconds) -> answers per label;
    ``stats`` -> the transport's counters.
    """
    from tipcrpc.addr import ServiceRange

    rid = cmd["id"]
    op = cmd["op"]
    try:
        if op == "call":
            value = await _opts(client, timeout=cmd["call_timeout"], instance=cmd.get("instance")).call(
                cmd["service"], cmd["method"], *cmd.get("args", []))
        elif op == "call_all":
            results = await _opts(client, timeout=cmd["call_timeout"]).call_all(cmd["service"], cmd["method"])
            value = sorted(r.value if r.ok else f"error: {r.error!r}" for r in results)
        elif op == "echo":
            data = payload(cmd["size"], cmd["seed"])
            t0 = time.perf_counter()
            back = await _opts(client, timeout=cmd["call_timeout"], instance=cmd["instance"]).call(cmd["service"], "echo", data)
            value = time.perf_counter() - t0
            if back != data:
                raise AssertionError(f"echo of {len(data)} bytes came back as {len(back)} bytes "
                                     f"(sha {hashlib.sha256(back).hexdigest()[:12]})")
        elif op == "slow_many":
            calls = [_opts(client, timeout=cmd["call_timeout"]).call(cmd["service"], "slow", cmd["seconds"])
                     for _ in range(cmd["n"])]
            value = list(await asyncio.gather(*calls))
        elif op == "many":
            opts = _opts(client, timeout=cmd["call_timeout"], instance=cmd.get("instance"))
            value = list(await asyncio.gather(*(opts.call(cmd["service"], cmd["method"]) for _ in range(cmd["n"]))))
        elif op == "mcast":
            raw_ep.send(ServiceRange(cmd["type"], cmd["lower"], cmd["upper"]), bytes.fromhex(cmd["data"]))
            value = None
        elif op == "names":
            value = sorted([ev.range.lower, ev.range.upper, ev.socket.node, ev.socket.port]
                           for ev in await _snapshot(t, cmd["type"]))
        elif op == "nodes":
            value = sorted(ev.node for ev in await _snapshot(t, 0))
        elif op == "links":
            value = sorted(ev.node for ev in await _snapshot(t, 2))
        elif op == "wait_links":
            value = await asyncio.wait_for(_wait_set(t, 2, set(cmd["nodes"]), lambda ev: ev.node), cmd["timeout_s"])
        elif op == "wait_names":
            value = await asyncio.wait_for(_wait_set(t, cmd["type"], set(cmd["instances"]),
                                                     lambda ev: ev.range.lower), cmd["timeout_s"])
        elif op == "wait_gone":
            value = await asyncio.wait_for(_wait_gone(t, cmd["type"], cmd["instance"]), cmd["timeout_s"])
        elif op == "soak":
            value = await _soak(client, cmd["service"], cmd["instances"], cmd["seconds"])
        elif op == "stats":
            value = dict(t.statistics())
        else:
            raise ValueError(f"unknown op {op!r}")
        _out(f"R {rid} " + json.dumps({"ok": True, "value": value}))
    except Exception as exc:  # reported to the test, which fails with it
        _out(f"R {rid} " + json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}))


def _opts(client: Any, **options: Any) -> Any:
    """The client with these call options (``None`` values left to the defaults)."""
    return client.options(**{k: v for k, v in options.items() if v is not None})


async def _wait_set(t: Any, stype: int, want: set[int], key: Any) -> float:
    """Wait until events of ``stype`` show every value in ``want`` present; returns seconds."""
    import tipcrpc
    from tipcrpc.addr import ServiceRange

    t0 = time.monotonic()
    have: set[int] = set()
    async with await t.subscribe(ServiceRange(stype, 0, 0xFFFFFFFF)) as sub:
        async for ev in sub:
            if isinstance(ev, (tipcrpc.Published, tipcrpc.LinkUp)):
                have.add(key(ev))
            elif isinstance(ev, (tipcrpc.Withdrawn, tipcrpc.LinkDown)):
                have.discard(key(ev))
            if want <= have:
                break
    return time.monotonic() - t0


async def _wait_gone(t: Any, stype: int, instance: int) -> None:
    """Wait until no publication of ``{stype, instance}`` is left in this node's view."""
    import tipcrpc
    from tipcrpc.addr import ServiceRange

    count = 0
    async with await t.subscribe(ServiceRange(stype, instance, instance)) as sub:
        async for ev in sub:
            if isinstance(ev, tipcrpc.Published):
                count += 1
            elif isinstance(ev, tipcrpc.Withdrawn):
                count -= 1
            if count == 0 and (ev is tipcrpc.SNAPSHOT_COMPLETE or isinstance(ev, tipcrpc.Withdrawn)):
                return


async def _soak(client: Any, service: str, instances: list[int], seconds: float) -> dict[str, int]:
    """Call ``whoami`` on each of ``instances`` in turn for ``seconds``; count answers per label."""
    counts: dict[str, int] = {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        label = await _opts(client, timeout=10, instance=instances[i % len(instances)]).call(service, "whoami")
        counts[label] = counts.get(label, 0) + 1
        i += 1
    return counts


async def _snapshot(t: Any, stype: int) -> list[Any]:
    """This node's current view of ``stype`` (type 2: its links), through a subscription."""
    import tipcrpc
    from tipcrpc.addr import ServiceRange

    seen = []
    async with await t.subscribe(ServiceRange(stype, 0, 0xFFFFFFFF)) as sub:
        async for ev in sub:
            if ev is tipcrpc.SNAPSHOT_COMPLETE:
                return seen
            seen.append(ev)
    return seen


if __name__ == "__main__":
    # A start-up that hangs shows where (stderr reaches the test report); cancelled at READY.
    faulthandler.dump_traceback_later(float(os.environ.get("AGENT_STACKS_AFTER_S", "150")), exit=False)
    _enter(sys.argv[sys.argv.index("--netns") + 1])
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(asyncio.run(main()))
