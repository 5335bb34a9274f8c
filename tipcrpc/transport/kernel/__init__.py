"""The kernel transport: Linux ``AF_TIPC`` sockets (``SOCK_RDM`` endpoints, the topology
server ``{1,1}``), plus generic-netlink configuration (:mod:`.netlink`, imported on demand
because pyroute2 is slow to import).

    from tipcrpc.transport.kernel import KernelTransport, probe

    if probe().available:
        async with KernelTransport() as t: ...
"""

from __future__ import annotations

from .probe import KernelProbe, probe, require
from .socket import DuplicatePublicationWarning, KernelEndpoint
from .topsrv import KernelSubscription
from .transport import KernelTransport

__all__ = [
    "KernelTransport",
    "KernelEndpoint",
    "KernelSubscription",
    "KernelProbe",
    "DuplicatePublicationWarning",
    "probe",
    "require",
]
