"""The kernel transport: Linux ``AF_TIPC`` sockets (``SOCK_RDM`` endpoints, the topology
server ``{1,1}``), plus generic-netlink configuration (:mod:`.netlink`, imported on demand
because pyroute2 is slow to import; :mod:`.pyroute2_lite` loads only its netlink part).

    from tipcrpc.transport.kernel import KernelTransport, probe

    if probe().available:
        async with KernelTransport() as t: ...
"""

from __future__ import annotations

from . import pyroute2_lite
from .probe import KernelProbe, probe, require
from .socket import DuplicatePublicationWarning, KernelEndpoint
from .topsrv import KernelSubscription
from .transport import KernelTransport

# Before .netlink/.nlattrs import pyroute2 (the modules above do not): netlink needs 16 of
# its ~160 modules.
pyroute2_lite.install()

__all__ = [
    "KernelTransport",
    "KernelEndpoint",
    "KernelSubscription",
    "KernelProbe",
    "DuplicatePublicationWarning",
    "probe",
    "require",
]
