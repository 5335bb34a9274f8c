"""grpcio peer: ``grpc.aio`` server with a generic handler, msgpack payloads, no protoc.

``grpc.method_handlers_generic_handler`` + ``unary_unary`` with msgpack (de)serializers, over
an insecure channel to 127.0.0.1. Message limits are raised to 64 MiB so the 16 MiB payload
row measures gRPC rather than its default 4 MiB cap.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import msgpack

from bench.common import (FANOUT_INSTANCES, AsyncAdapter, ClientSpec, Profiler, announce_ready,
                          run_async, run_async_client, wait_for_stop)

OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
SERVICE = "bench.Calc"


async def _serve(profile: Optional[str]) -> None:
    import grpc

    async def add(req: Any, ctx: Any) -> Any:
        return req[0] + req[1]

    async def echo(req: Any, ctx: Any) -> Any:
        return req

    handler = grpc.method_handlers_generic_handler(SERVICE, {
        "add": grpc.unary_unary_rpc_method_handler(add, request_deserializer=msgpack.unpackb,
                                                   response_serializer=msgpack.packb),
        "echo": grpc.unary_unary_rpc_method_handler(echo, request_deserializer=msgpack.unpackb,
                                                    response_serializer=msgpack.packb),
    })
    servers = []
    ports = []
    for _ in range(FANOUT_INSTANCES):
        srv = grpc.aio.server(options=OPTIONS)
        srv.add_generic_rpc_handlers((handler,))
        ports.append(srv.add_insecure_port("127.0.0.1:0"))
        await srv.start()
        servers.append(srv)
    prof = Profiler(profile)
    announce_ready({"ports": ports})
    prof.arm()
    try:
        await wait_for_stop()
    finally:
        prof.stop()
        await asyncio.gather(*[s.stop(None) for s in servers])


def server(variant: str, profile: Optional[str]) -> None:
    run_async(variant, lambda: _serve(profile))


class GrpcClient(AsyncAdapter):
    def __init__(self, ports: list[int]) -> None:
        self.ports = ports

    async def open(self) -> None:
        import grpc

        self.channels = [grpc.aio.insecure_channel(f"127.0.0.1:{p}", options=OPTIONS) for p in self.ports]
        self.adds = [c.unary_unary(f"/{SERVICE}/add", request_serializer=msgpack.packb,
                                   response_deserializer=msgpack.unpackb) for c in self.channels]
        self._echo = self.channels[0].unary_unary(f"/{SERVICE}/echo", request_serializer=msgpack.packb,
                                                  response_deserializer=msgpack.unpackb)
        for c in self.channels:
            await c.channel_ready()
        self._add = self.adds[0]

    async def add(self) -> Any:
        return await self._add((1, 2))

    async def echo(self, data: bytes) -> bytes:
        return await self._echo(data)

    async def fanout(self) -> Any:
        return await asyncio.gather(*[a((1, 2)) for a in self.adds])

    async def close(self) -> None:
        await asyncio.gather(*[c.close() for c in self.channels])


def client(spec: ClientSpec) -> dict[str, Any]:
    adapter = GrpcClient(spec.server["ports"])
    return run_async(spec.loop, lambda: run_async_client(adapter, spec))
