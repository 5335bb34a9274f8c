"""The userspace TIPC node: TIPC's own v2 wire protocol over the UDP bearer (DESIGN.md §5).

Pure protocol modules (L1): :mod:`.msg` (header codec), :mod:`.media` (UDP media address),
:mod:`.discover` (LINK_CONFIG), :mod:`.link` (link endpoint FSM), :mod:`.fragment`
(fragmentation, bundles), :mod:`.node` (peers and their links). I/O lives in ``udp_media`` and
``stack``.
"""

from .topsrv import UserSubscription
from .transport import UserEndpoint, UserTransport

__all__ = ["UserTransport", "UserEndpoint", "UserSubscription"]
