"""Pyro5 peer: a synchronous proxy against a threaded daemon on 127.0.0.1, msgpack serializer.

Pyro5 proxies belong to one thread, so the 64-caller workload uses 64 threads with a proxy
each (64 connections, served by the daemon's thread pool) — how a Pyro5 user would do it.
Fan-out calls the 8 instances one after another: a synchronous proxy cannot overlap them.
"""

from __future__ import annotations

import threading
from typing import Any, Optional

from bench.common import (FANOUT_INSTANCES, ClientSpec, Profiler, Stopped, SyncAdapter,
                          announce_ready, encode_samples, install_blocking_stop, perf_ns,
                          run_sync_client)

SERIALIZER = "msgpack"


def _configure() -> None:
    import Pyro5.api

    Pyro5.api.config.SERIALIZER = SERIALIZER
    Pyro5.api.config.SERVERTYPE = "thread"
    Pyro5.api.config.THREADPOOL_SIZE = 128  # > 64 callers + 8 fan-out connections
    Pyro5.api.config.THREADPOOL_SIZE_MIN = 8


def server(profile: Optional[str]) -> None:
    import Pyro5.api

    _configure()

    @Pyro5.api.expose
    class Calc:
        def add(self, a: int, b: int) -> int:
            return a + b

        def echo(self, data: bytes) -> bytes:
            return data

    install_blocking_stop()
    daemons = [Pyro5.api.Daemon(host="127.0.0.1", port=0) for _ in range(FANOUT_INSTANCES)]
    uris = [str(d.register(Calc(), "calc")) for d in daemons]
    # Daemons 1..7 run in threads; daemon 0 (the one seq/conc/payload use) in the main thread.
    for d in daemons[1:]:
        threading.Thread(target=d.requestLoop, daemon=True).start()
    prof = Profiler(profile)
    announce_ready({"uris": uris})
    prof.arm()
    try:
        daemons[0].requestLoop()
    except Stopped:
        pass
    finally:
        prof.stop()


class Pyro5Client(SyncAdapter):
    def __init__(self, uris: list[str]) -> None:
        import Pyro5.api

        _configure()
        self.api = Pyro5.api
        self.uris = uris
        self.proxy = Pyro5.api.Proxy(uris[0])
        self.all = [Pyro5.api.Proxy(u) for u in uris]

    def open(self) -> None:
        self.proxy._pyroBind()
        for p in self.all:
            p._pyroBind()

    def add(self) -> Any:
        return self.proxy.add(1, 2)

    def echo(self, data: bytes) -> bytes:
        return self.proxy.echo(data)

    def fanout(self) -> Any:
        return [p.add(1, 2) for p in self.all]

    def conc(self, callers: int, warmup_s: float, dur_s: float) -> dict[str, Any]:
        proxies = [self.api.Proxy(self.uris[0]) for _ in range(callers)]
        samples: list[int] = []  # list.append is atomic under the GIL
        window = [0, 0]
        barrier = threading.Barrier(callers + 1)

        def worker(p: Any) -> None:
            p._pyroClaimOwnership()
            p._pyroBind()
            barrier.wait()
            append = samples.append
            while True:
                t0 = perf_ns()
                p.add(1, 2)
                t1 = perf_ns()
                if window[1] and t1 > window[1]:
                    return
                if window[0] and t0 >= window[0]:
                    append(t1 - t0)

        threads = [threading.Thread(target=worker, args=(p,)) for p in proxies]
        for t in threads:
            t.start()
        barrier.wait()
        t_start = perf_ns() + int(warmup_s * 1e9)
        window[:] = [t_start, t_start + int(dur_s * 1e9)]
        for t in threads:
            t.join()
        for p in proxies:
            p._pyroClaimOwnership()
            p._pyroRelease()
        return {"samples": encode_samples(samples), "elapsed_ns": window[1] - window[0],
                "completed": len(samples)}

    def close(self) -> None:
        self.proxy._pyroRelease()
        for p in self.all:
            p._pyroRelease()


def client(spec: ClientSpec) -> dict[str, Any]:
    return run_sync_client(Pyro5Client(spec.server["uris"]), spec)
