"""tipcrpc: asyncio RPC that addresses services by TIPC name.

::

    calc = tipcrpc.Service("demo.calc")

    @calc.method
    async def add(a: int, b: int) -> int:
        return a + b

    async with tipcrpc.serve(calc, instance=1):
        async with tipcrpc.connect() as client:
            await client.call("demo.calc", "add", 1, 2)
"""

from .addr import Importance, NodeInfo, Scope, ServiceAddr, ServiceRange, SocketAddr, service_type
from .api import connect, serve
from .codec import register_ext
from .errors import *  # noqa: F401,F403
from .events import *  # noqa: F401,F403
from .rpc.client import Caller, Client
from .rpc.context import CallContext, current_call
from .rpc.options import CallOptions
from .rpc.membership import Policy
from .rpc.remote_errors import remote_exception
from .rpc.server import Server
from .rpc.service import Service
from .rpc.stub import CallStream, FanoutResult, Stub, Watch

__version__ = "0.1.0"
