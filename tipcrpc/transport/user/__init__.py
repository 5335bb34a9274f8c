"""The userspace TIPC node: TIPC's own v2 wire protocol over the UDP bearer (DESIGN.md §5).

Pure protocol modules (L1): :mod:`.msg` (header codec), :mod:`.media` (UDP media address),
:mod:`.discover` (LINK_CONFIG), :mod:`.link` (link endpoint FSM), :mod:`.fragment`
(fragmentation, bundles), :mod:`.node` (peers and their links), :mod:`.name_distr` (name
distribution). The name table and topology subscriptions are shared with the memory
transport: :mod:`tipcrpc.nametable`. I/O lives in ``udp_media`` and ``stack``.
"""

from .transport import UserEndpoint, UserSubscription, UserTransport

__all__ = ["UserTransport", "UserEndpoint", "UserSubscription"]
