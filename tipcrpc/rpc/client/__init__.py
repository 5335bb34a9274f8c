"""The RPC client (layer L4): calls, streams, notifications, fan-out, failover.

Every call is sent straight to one chosen **socket address** (see :mod:`..resolver` and
:mod:`..membership`), so the client always knows which instance holds it. The rules that
move a call elsewhere — the moment the client learns something, never on a timer — are in
the pure :mod:`..call_table`; :class:`Client` is the event-loop shell around it, and
:class:`Caller` carries call options (``client.options(...)``) apart from arguments.
"""

from ..call_table import NOTIFY_RETRY_WINDOW_S, PROBE_INTERVAL_S
from ..options import CallOptions
from ..stub import FanoutResult
from .client import Caller, Client

__all__ = ["Client", "Caller", "CallOptions", "FanoutResult", "PROBE_INTERVAL_S", "NOTIFY_RETRY_WINDOW_S"]
