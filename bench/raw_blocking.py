"""Raw echo floor with blocking sockets: the cheapest request/reply Python can do.

Server: one socket, ``recv`` → ``send`` in a loop (for connection families: accept one
connection, then the same). Client: ``send`` then ``recv`` per call; the 64-caller workload is
a pipeline keeping 64 requests outstanding on the one socket. Fan-out needs multiplexing, so
it is measured only on the event-loop floor.
"""

from __future__ import annotations

import tempfile
from typing import Any

from bench import raw_sockets as rs
from bench.common import (ClientSpec, NotAvailable, Profiler, Stopped, SyncAdapter, announce_ready,
                          announce_unavailable, encode_samples, install_blocking_stop, perf_ns,
                          run_sync_client)
from bench.raw_framing import BlockingFrameReader, send_frame_blocking

SEQ_PAYLOAD = b"a" * 32


def server(family: str, profile: str | None) -> None:
    install_blocking_stop()
    prof = Profiler(profile)
    try:
        socks, addrs = rs.server_sockets(family, 1, tempfile.gettempdir())
    except NotAvailable as e:
        announce_unavailable(str(e))
        return
    s = socks[0]
    announce_ready({"family": family, "addrs": addrs})
    kind = rs.FAMILIES[family].kind
    prof.arm()
    try:
        if kind == "dgram":
            buf = rs.recv_buffer(family, s)
            recvfrom_into, sendto = s.recvfrom_into, s.sendto
            while True:
                n, peer = recvfrom_into(buf)
                sendto(buf[:n], peer)  # echo straight from the buffer: no copy
        conn, _ = s.accept()
        rs.prepare_accepted(family, conn)
        if kind == "seqpacket":
            buf = rs.recv_buffer(family, conn)
            recv_into, send = conn.recv_into, conn.send
            while True:
                n = recv_into(buf)
                if not n:
                    return
                send(buf[:n])
        reader = BlockingFrameReader(conn)
        while True:
            send_frame_blocking(conn, reader.read())
    except (Stopped, ConnectionError):
        pass
    finally:
        prof.stop()


class BlockingClient(SyncAdapter):
    def __init__(self, family: str, addrs: list[Any]) -> None:
        self.family = family
        self.kind = rs.FAMILIES[family].kind
        self.sock = rs.client_socket(family, addrs[0])
        self.payload_limit = rs.message_limit(family, self.sock)
        self.buf = rs.recv_buffer(family, self.sock)
        self.dest = rs.dest_of(family, addrs[0]) if family == "tipc-rdm" else None
        self.reader = BlockingFrameReader(self.sock) if self.kind == "stream" else None
        self.next_id = 0

    # one request on the wire and its reply
    def _send(self, msg: bytes) -> None:
        if self.reader is not None:
            send_frame_blocking(self.sock, msg)
        elif self.dest is not None:
            self.sock.sendto(msg, self.dest)
        else:
            self.sock.send(msg)

    def _recv(self) -> bytes:
        if self.reader is not None:
            return self.reader.read()
        n = self.sock.recv_into(self.buf)
        if n >= len(self.buf):
            raise rs.Truncated(f"{n}-byte message filled the receive buffer")
        return bytes(self.buf[:n])

    def add(self) -> Any:
        self.next_id += 1
        self._send(self.next_id.to_bytes(8, "little") + SEQ_PAYLOAD)
        return self._recv()

    def echo(self, data: bytes) -> bytes:
        self.next_id += 1
        try:
            self._send(self.next_id.to_bytes(8, "little") + data)
        except OSError as e:
            if e.errno == 90:  # EMSGSIZE: larger than the socket can carry as one message
                raise NotAvailable(f"EMSGSIZE above the {self.family} message limit") from None
            raise
        return memoryview(self._recv())[8:]  # type: ignore[return-value]

    def fanout(self) -> Any:
        raise NotAvailable("the blocking floor is one socket; see the event-loop rows")

    def conc(self, callers: int, warmup_s: float, dur_s: float) -> dict[str, Any]:
        if self.family.startswith("unix"):
            # Unix datagram queues hold net.unix.max_dgram_qlen (10) messages: a blocking client
            # that keeps 64 outstanding and a blocking server would both block in send().
            raise NotAvailable("64 outstanding > unix max_dgram_qlen; see the event-loop row")
        sent: dict[int, int] = {}
        samples: list[int] = []
        for _ in range(callers):
            self.next_id += 1
            sent[self.next_id] = perf_ns()
            self._send(self.next_id.to_bytes(8, "little") + SEQ_PAYLOAD)
        t_start = perf_ns() + int(warmup_s * 1e9)
        t_end = t_start + int(dur_s * 1e9)
        while True:
            reply = self._recv()
            t1 = perf_ns()
            t0 = sent.pop(int.from_bytes(reply[:8], "little"))
            if t0 >= t_start and t1 <= t_end:
                samples.append(t1 - t0)
            if t1 > t_end:
                break
            self.next_id += 1
            sent[self.next_id] = perf_ns()
            self._send(self.next_id.to_bytes(8, "little") + SEQ_PAYLOAD)
        for _ in range(len(sent)):  # drain so the server is idle before the next workload
            self._recv()
        return {"samples": encode_samples(samples), "elapsed_ns": t_end - t_start, "completed": len(samples)}

    def close(self) -> None:
        self.sock.close()


def client(spec: ClientSpec) -> dict[str, Any]:
    return run_sync_client(BlockingClient(spec.server["family"], spec.server["addrs"]), spec)
