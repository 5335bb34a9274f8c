"""tipcrpc rows: the public API (``tipcrpc.serve`` / ``tipcrpc.connect``) on each transport.

* ``memory`` — server and client in one process on the in-process cluster (absolute figures
  only: there is no process boundary to compare with a floor);
* ``user`` — the userspace TIPC node over UDP loopback, server and client in separate
  processes; each run uses its own TIPC network id so no other node on the host joins;
* ``kernel`` — AF_TIPC, node-local, inside the ktipc guest.

Services: ``bench.calc`` (instance 1: ``add``, ``echo``), ``bench.fan`` (instances 0..7, one
publication each, for ``call_all``) and ``bench.fo`` (failover: ``hold``). Methods are
``async def`` as in the README's first example, and idempotent so failover may re-send them.

A row whose transport or API is missing is reported ``n/a (reason)``: nothing is simulated.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from typing import Any, Optional

from bench.common import (FANOUT_INSTANCES, AsyncAdapter, ClientSpec, NotAvailable, Profiler,
                          announce_ready, announce_unavailable, emit_result, encode_samples,
                          perf_ns, run_async, run_async_client, wait_for_stop)

CALC, FAN, FO = "bench.calc", "bench.fan", "bench.fo"
#: Bound on waiting for publications to become visible (a safety net, not a delay).
VISIBLE_TIMEOUT_S = 20.0
#: Calls that warm the failover standby's code paths (and the link to it) before the kill.
WARM_CALLS = 50


def _api() -> Any:
    """The tipcrpc package, or NotAvailable naming what has not landed yet."""
    try:
        import tipcrpc
    except Exception as e:  # an import error in a half-landed package is "not available"
        raise NotAvailable(f"import tipcrpc failed: {type(e).__name__}: {e}") from None
    missing = [n for n in ("Service", "serve", "connect") if not hasattr(tipcrpc, n)]
    if missing:
        raise NotAvailable(f"tipcrpc.{'/'.join(missing)} not implemented yet")
    return tipcrpc


def services(hold_forever: bool) -> tuple[Any, Any, Any]:
    """The three benchmark services; ``hold_forever`` makes ``bench.fo.hold`` never return."""
    tipcrpc = _api()
    calc = tipcrpc.Service(CALC)
    fan = tipcrpc.Service(FAN)
    fo = tipcrpc.Service(FO)

    @calc.method(idempotent=True)
    async def add(a: int, b: int) -> int:
        return a + b

    @calc.method(idempotent=True)
    async def echo(data: bytes) -> bytes:
        return data

    @fan.method(idempotent=True)
    async def add(a: int, b: int) -> int:  # noqa: F811 - same method name on another service
        return a + b

    @fo.method(idempotent=True)
    async def hold() -> int:
        if hold_forever:
            # Tell the failover driver the call has arrived, then never answer: only a
            # failover to another instance can complete it.
            sys.stdout.write("HELD\n")
            sys.stdout.flush()
            await asyncio.Event().wait()
        return os.getpid()

    return calc, fan, fo


async def transport_for(stack: contextlib.AsyncExitStack, kind: str, extra: dict[str, Any]) -> Any:
    """What ``serve``/``connect`` get as ``transport=``: a kind name, or an open user node.

    For ``user`` the process opens its own node with a private network id, so concurrent
    test runs on this host (default id 4711) never join the benchmark's cluster.
    """
    if kind != "user":
        return kind
    try:
        from tipcrpc.transport.user import UserTransport
    except ImportError:
        try:  # while the package __init__ does not re-export it yet
            from tipcrpc.transport.user.transport import UserTransport  # type: ignore[no-redef]
        except Exception as e:
            raise NotAvailable(f"user transport missing: {type(e).__name__}: {e}") from None
    return await stack.enter_async_context(UserTransport(netid=int(extra["netid"])))


def _unavailable_reason(e: BaseException) -> Optional[str]:
    """A reason when ``e`` means 'this transport cannot run here' rather than a bug."""
    from tipcrpc.errors import TransportUnavailable

    if isinstance(e, (TransportUnavailable, NotAvailable)):
        return f"{type(e).__name__}: {e}"
    return None


async def serve_all(stack: contextlib.AsyncExitStack, kind: str, extra: dict[str, Any],
                    hold_forever: bool = False, which: tuple[str, ...] = (CALC, FAN)) -> dict[str, Any]:
    """Serve the requested services; returns ``{service: [node, port]}`` of the first socket."""
    tipcrpc = _api()
    calc, fan, fo = services(hold_forever)
    t = await transport_for(stack, kind, extra)
    sockets: dict[str, Any] = {}
    if CALC in which:
        srv = await stack.enter_async_context(tipcrpc.serve(calc, instance=1, transport=t))
        sockets[CALC] = [srv.address.node, srv.address.port]
    if FAN in which:  # one endpoint (socket) per instance, as 8 separate servers would have
        for i in range(FANOUT_INSTANCES):
            await stack.enter_async_context(tipcrpc.serve(fan, instance=i, transport=t))
    if FO in which:
        srv = await stack.enter_async_context(tipcrpc.serve(fo, instance=1, transport=t))
        sockets[FO] = [srv.address.node, srv.address.port]
    return sockets


async def _serve(kind: str, profile: Optional[str], extra: dict[str, Any]) -> None:
    try:
        async with contextlib.AsyncExitStack() as stack:
            try:
                sockets = await serve_all(stack, kind, extra, bool(extra.get("hold")),
                                          tuple(extra.get("services", (CALC, FAN))))
            except Exception as e:
                reason = _unavailable_reason(e)
                if reason is None:
                    raise
                announce_unavailable(reason)
                return
            prof = Profiler(profile)
            announce_ready({"transport": kind, "pid": os.getpid(), "sockets": sockets, **extra})
            prof.arm()
            try:
                await wait_for_stop()
            finally:
                prof.stop()
    except NotAvailable as e:
        announce_unavailable(str(e))


def server(kind: str, variant: str, profile: Optional[str], extra: dict[str, Any]) -> None:
    run_async(variant, lambda: _serve(kind, profile, extra))


async def wait_visible(client: Any, service: str, count: int, timeout: float = VISIBLE_TIMEOUT_S) -> None:
    """Wait (on topology events, not a sleep) until ``count`` publications of ``service`` show."""
    up: set[Any] = set()
    try:
        async with asyncio.timeout(timeout):
            async with client.watch(service) as w:
                async for ev in w:
                    if type(ev).__name__ == "ServiceUp":
                        up.add(ev.socket)
                    elif type(ev).__name__ == "ServiceDown":
                        up.discard(ev.socket)
                    if len(up) >= count:
                        return
    except TimeoutError:
        stats = dict(client.transport.statistics()) if hasattr(client, "transport") else {}
        interesting = {k: v for k, v in stats.items() if any(s in k for s in ("link", "node", "disc", "peer"))}
        raise RuntimeError(f"only {len(up)}/{count} publications of {service} visible after {timeout:.0f} s; "
                           f"transport: {interesting or stats}") from None


async def wait_sockets(client: Any, service: str, present: list[tuple[int, int]],
                       absent: list[tuple[int, int]], timeout: float = VISIBLE_TIMEOUT_S) -> None:
    """Wait until the client's view of ``service`` has every ``present`` socket and no
    ``absent`` one (so a call provably goes where the scenario needs it)."""
    up: set[tuple[int, int]] = set()
    want, gone = set(map(tuple, present)), set(map(tuple, absent))
    async with asyncio.timeout(timeout):
        async with client.watch(service) as w:
            snapshot = False
            async for ev in w:
                name = type(ev).__name__
                if name == "ServiceUp":
                    up.add((ev.node, ev.port))
                elif name == "ServiceDown":
                    up.discard((ev.node, ev.port))
                else:
                    snapshot = snapshot or name == "SnapshotComplete"
                if snapshot and want <= up and not (gone & up):
                    return


class TipcrpcClient(AsyncAdapter):
    def __init__(self, kind: str, extra: dict[str, Any]) -> None:
        self.kind = kind
        self.extra = extra

    async def open(self) -> None:
        tipcrpc = _api()
        # The client shares the service definitions, as a user's client would: that is how
        # it knows the methods are idempotent (and saves a name → type hash per call).
        self.calc, self.fan, _fo = self.defs = services(False)
        self.stack = contextlib.AsyncExitStack()
        await self.stack.__aenter__()
        try:
            if self.kind == "memory":
                await serve_all(self.stack, self.kind, self.extra)
            t = await transport_for(self.stack, self.kind, self.extra)
            self.client = await self.stack.enter_async_context(tipcrpc.connect(transport=t))
            await wait_visible(self.client, CALC, 1)
            await wait_visible(self.client, FAN, FANOUT_INSTANCES)
        except BaseException as e:
            await self.stack.__aexit__(type(e), e, e.__traceback__)
            reason = _unavailable_reason(e) if isinstance(e, Exception) else None
            if reason is not None:
                raise NotAvailable(reason) from None
            raise

    async def add(self) -> Any:
        return await self.client.call(self.calc, "add", 1, 2)

    async def echo(self, data: bytes) -> bytes:
        return await self.client.call(self.calc, "echo", data)

    async def fanout(self) -> Any:
        results = await self.client.call_all(self.fan, "add", 1, 2)
        if len(results) != FANOUT_INSTANCES or not all(r.ok for r in results):
            raise RuntimeError(f"call_all: {results!r}"[:200])
        return results

    async def close(self) -> None:
        await self.stack.__aexit__(None, None, None)


def client(kind: str, spec: ClientSpec) -> dict[str, Any]:
    adapter = TipcrpcClient(kind, dict(spec.extra))
    try:
        return run_async(spec.loop, lambda: run_async_client(adapter, spec))
    except NotAvailable as e:
        # The whole row is unavailable (e.g. the API or transport has not landed).
        return {w: {"na": str(e)} for w in spec.plan.workloads}


# --------------------------------------------------------------------------- failover


class _Server:
    """A failover server child, spawned by the client process; its stdout is watched."""

    def __init__(self, kind: str, loop: str, extra: dict[str, Any], hold: bool, cpus: Optional[list[int]]) -> None:
        # The standby (hold=False) also serves bench.calc, so the client can warm it up
        # before the kill: the clock then measures failover, not a cold first call.
        services_ = [FO] if hold else [FO, CALC]
        arg = json.dumps({"variant": loop, "extra": {**extra, "hold": hold, "services": services_}})

        def pre() -> None:
            if cpus:
                os.sched_setaffinity(0, set(cpus))

        self.proc = subprocess.Popen([sys.executable, "-m", "bench.proc", "server", f"tipcrpc-{kind}", arg],
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                                     preexec_fn=pre)
        self.lines: asyncio.Queue[str] = asyncio.Queue()
        loop_ = asyncio.get_running_loop()
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        os.set_blocking(fd, False)
        self._buf = b""

        def readable() -> None:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                loop_.remove_reader(fd)
                self.lines.put_nowait("")
                return
            self._buf += chunk
            while b"\n" in self._buf:
                line, self._buf = self._buf.split(b"\n", 1)
                self.lines.put_nowait(line.decode())

        loop_.add_reader(fd, readable)
        self._fd = fd

    async def expect(self, prefix: str, timeout: float = 60.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                line = await self.lines.get()
                if not line:
                    raise RuntimeError(f"failover server exited ({self.proc.wait()}) waiting for {prefix}")
                if line.startswith("UNAVAILABLE"):
                    raise NotAvailable(line[12:])
                if line.startswith(prefix):
                    return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        with contextlib.suppress(ValueError, OSError):
            asyncio.get_running_loop().remove_reader(self._fd)


async def _failover(kind: str, spec: ClientSpec) -> dict[str, Any]:
    """Time from SIGKILL of the instance holding a call to that call completing elsewhere.

    Server A publishes ``bench.fo`` and never answers ``hold``; once A reports the call has
    arrived, server B publishes the same name (and ``bench.calc``, which the client calls a
    few times to warm B up); when the client sees both, A is SIGKILLed and the clock runs
    until the (idempotent) call returns B's pid.
    """
    tipcrpc = _api()
    extra = dict(spec.extra)
    reps = int(extra.get("reps", 5))
    cpus = extra.get("server_cpus")
    calc, _fan, fo = services(False)  # the client knows `hold` is idempotent from its definition
    samples: list[int] = []
    async with contextlib.AsyncExitStack() as stack:
        t = await transport_for(stack, kind, extra)
        client = await stack.enter_async_context(tipcrpc.connect(transport=t))
        gone: list[Any] = []
        for _ in range(reps):
            a = _Server(kind, spec.loop or "asyncio", extra, True, cpus)
            b: Optional[_Server] = None
            try:
                a_sock = json.loads((await a.expect("READY"))[6:])["sockets"][FO]
                await wait_sockets(client, FO, [a_sock], gone)
                call = asyncio.ensure_future(client.options(timeout=60.0).call(fo, "hold"))
                await a.expect("HELD")
                b = _Server(kind, spec.loop or "asyncio", extra, False, cpus)
                b_info = json.loads((await b.expect("READY"))[6:])
                b_sock = b_info["sockets"][FO]
                await wait_sockets(client, FO, [a_sock, b_sock], [])
                gone = [a_sock, b_sock]  # the next repetition starts once both are withdrawn
                for _w in range(WARM_CALLS):  # bench.calc lives on B only
                    await client.options(timeout=30.0).call(calc, "add", 1, 2)
                t0 = perf_ns()
                os.kill(a.proc.pid, signal.SIGKILL)
                result = await call
                t1 = perf_ns()
                if result != b_info["pid"]:
                    raise RuntimeError(f"retried call answered by pid {result}, expected B={b_info['pid']}")
                samples.append(t1 - t0)
            finally:
                a.kill()
                if b is not None:
                    b.kill()
    return {"samples": encode_samples(samples), "completed": len(samples)}


def failover_client(kind: str, spec: ClientSpec) -> None:
    try:
        res = run_async(spec.loop, lambda: _failover(kind, spec))
    except NotAvailable as e:
        res = {"na": str(e)}
    except Exception as e:
        res = {"error": f"{type(e).__name__}: {e}"[:300]}
    emit_result({"failover": res}, spec.extra.get("result_path"))
