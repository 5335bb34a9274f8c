"""tipcrpc: asyncio RPC that addresses services by TIPC name."""

from .addr import Importance, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr, service_type
from .errors import *  # noqa: F401,F403
from .events import *  # noqa: F401,F403

__version__ = "0.1.0"
