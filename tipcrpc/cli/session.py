"""How the ``tipcrpc`` command reaches a cluster: which transport, and a client on it.

On the **kernel** transport the command is a process on the host's own TIPC node: it reads
and changes the node through generic netlink and talks to services through ``AF_TIPC``.

On the **userspace** transport every process is a node of its own, so the command *joins
the cluster as a short-lived node* for the duration of one command (identity
``tipcrpc-cli-<host>-<pid>``). This was chosen over asking a running node through a local
control channel because it needs no daemon and no second protocol: the command is an
ordinary client, the cluster's name table is replicated to every node (so a fresh node
sees every publication once its links are up), and nothing new has to be secured. The
price is the discovery time of a node (links settle within ~0.1 s on one host; the bulk of
the peers' publications follows at once, ``--settle`` waits for it) and a node up/down
seen by the peers for each command. :func:`settle` waits for the peers' publications
by watching for them (bounded by ``--settle``), not for a fixed time.
"""

from __future__ import annotations

import os
import socket
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

import anyio

import tipcrpc
from tipcrpc.addr import LINK_STATE, NODE_STATE, U32_MAX, ServiceRange
from tipcrpc.api import resolve_transport_kind, user_options_from_env
from tipcrpc.errors import TransportUnavailable, UsageError
from tipcrpc.events import LinkUp, NodeUp, SnapshotComplete
from tipcrpc.transport.base import Transport

__all__ = ["transport_kind", "make_transport", "settle", "joined", "client_of"]


def transport_kind(args: Any) -> str:
    """``"kernel"`` or ``"user"`` from ``--transport`` (``auto``: $TIPCRPC_TRANSPORT, else
    kernel if AF_TIPC is usable, else user)."""
    kind = resolve_transport_kind(args.transport)
    if kind == "memory":
        raise UsageError("the memory transport exists inside one process only; use --transport kernel or user")
    return kind


_CLI_IDENTITY = object()


def make_transport(args: Any, kind: str, identity: Any = _CLI_IDENTITY) -> Transport:
    """A transport of ``kind`` (not open). On the userspace transport the node's identity is
    ``tipcrpc-cli-<host>-<pid>`` unless ``identity`` is given (``None``: $TIPCRPC_USER_IDENTITY,
    else the default one). A command's own node never takes $TIPCRPC_USER_IDENTITY: that is
    the identity of the node it inspects, and two live nodes may not share one."""
    if kind == "kernel":
        from tipcrpc.transport.kernel import KernelTransport

        return KernelTransport(netns=args.netns)
    try:
        from tipcrpc.transport.user import UserTransport
    except ImportError as exc:  # pragma: no cover - the user transport ships with the package
        raise TransportUnavailable(f"the userspace transport is not installed ({exc})") from None
    opts = user_options_from_env()
    env_identity = opts.pop("identity", None)
    if identity is _CLI_IDENTITY:
        identity = f"tipcrpc-cli-{socket.gethostname()}-{os.getpid()}"
    elif identity is None:
        identity = env_identity
    return UserTransport(identity=identity, discovery_wait=args.discovery, **opts)


async def _snapshot(transport: Transport, stype: int) -> list[Any]:
    out: list[Any] = []
    async with await transport.subscribe(ServiceRange(stype, 0, U32_MAX)) as sub:
        async for ev in sub:
            if isinstance(ev, SnapshotComplete):
                return out
            out.append(ev)
    return out


async def settle(transport: Transport, limit: float) -> None:
    """Wait (at most ``limit`` seconds) until the name table holds every linked peer's
    publications. A peer sends them in bulk as soon as its link is up, its own node-state
    publication ``{0, peer}`` first; so once that is in for every peer with a link
    (``{2, peer}``), the bulks have arrived."""
    with anyio.move_on_after(limit):
        linked = {ev.node for ev in await _snapshot(transport, LINK_STATE) if isinstance(ev, LinkUp)}
        if not linked:
            return
        seen: set[int] = set()
        async with await transport.subscribe(ServiceRange(NODE_STATE, 0, U32_MAX)) as sub:
            async for ev in sub:
                if isinstance(ev, NodeUp):
                    seen.add(ev.node)
                    if linked <= seen:
                        return


@asynccontextmanager
async def joined(args: Any) -> AsyncIterator[Transport]:
    """The transport, open; on the userspace transport, joined and settled (see above)."""
    kind = transport_kind(args)
    transport = make_transport(args, kind)
    async with transport:
        if kind == "user":
            await settle(transport, args.settle)
        yield transport


@asynccontextmanager
async def client_of(args: Any) -> AsyncIterator[tuple[Transport, tipcrpc.Client]]:
    """The transport and a client on it."""
    async with joined(args) as transport:
        async with tipcrpc.connect(transport, default_timeout=args.timeout) as client:
            yield transport, client
