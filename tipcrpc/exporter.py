"""An optional Prometheus endpoint for servers' and clients' metrics (layer L5).

::

    async with tipcrpc.serve(calc) as server, tipcrpc.connect() as client:
        exporter = await tipcrpc.exporter.start_exporter([server, client], port=9464)
        ...                                   # curl http://127.0.0.1:9464/metrics
        await exporter.aclose()

Or without HTTP: :func:`metrics_text` returns the same text for any other transport (a
file for node_exporter's textfile collector, a log line...).

The endpoint is a minimal HTTP/1.0 responder on asyncio streams (GET ``/metrics`` only),
bound to loopback by default: metrics name services and methods, so exposing them beyond
the host is the operator's decision (``host="0.0.0.0"``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterable

from .metrics import Metrics, render_prometheus

__all__ = ["Exporter", "metrics_text", "start_exporter", "CONTENT_TYPE"]

#: The Prometheus text format's content type.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_MAX_REQUEST = 8192


def metrics_text(sources: Iterable[Any]) -> str:
    """Prometheus text for ``sources`` (objects with a ``metrics`` :class:`Metrics` and a
    ``statistics()``, i.e. servers and clients; plain :class:`Metrics` tables are accepted
    too). The integer counters of ``statistics()`` become ``tipcrpc_<role>_<counter>`` gauges."""
    tables: list[Metrics] = []
    gauges: dict[str, float] = {}
    for src in sources:
        if isinstance(src, Metrics):
            tables.append(src)
            continue
        table = src.metrics
        tables.append(table)
        for key, value in src.statistics().items():
            if isinstance(value, int) and not isinstance(value, bool):
                name = f"tipcrpc_{table.role}_{key}"
                gauges[name] = gauges.get(name, 0) + value
    return render_prometheus(tables, gauges)


class Exporter:
    """A running endpoint (see :func:`start_exporter`); ``port`` is the bound port."""

    def __init__(self, server: asyncio.base_events.Server, port: int) -> None:
        self._server = server
        self.port = port

    async def aclose(self) -> None:
        """Stop listening and wait for the server to close."""
        self._server.close()
        await self._server.wait_closed()


async def start_exporter(sources: Iterable[Any], *, host: str = "127.0.0.1", port: int = 9464) -> Exporter:
    """Serve ``GET /metrics`` (:func:`metrics_text` of ``sources``) on ``host:port``
    (``port=0``: any free port; read :attr:`Exporter.port`)."""
    items = list(sources)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5.0)
            method, _sp, rest = head[:_MAX_REQUEST].partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method == b"GET" and path == b"/metrics":
                body, status, ctype = metrics_text(items).encode(), "200 OK", CONTENT_TYPE
            else:
                body, status, ctype = b"GET /metrics only\n", "404 Not Found", "text/plain"
            writer.write(f"HTTP/1.0 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
                         f"Connection: close\r\n\r\n".encode() + body)  # fmt: skip
            await writer.drain()
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, asyncio.TimeoutError, ConnectionError):
            pass  # a scraper that went away or sent garbage: nothing to answer
        finally:
            writer.close()

    server = await asyncio.start_server(handle, host, port, limit=_MAX_REQUEST)
    bound = server.sockets[0].getsockname()[1]
    return Exporter(server, bound)
