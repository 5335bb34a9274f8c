"""TIPC's name table and topology-subscription semantics, shared by the userspace node and
the memory cluster.

* :mod:`.table` — publications, anycast round-robin over the first matching range,
  multicast lookups, node scope, purge on node down (mirrors ``net/tipc/name_table.c``);
* :mod:`.subscr` — ``TIPC_SUB_PORTS``/``TIPC_SUB_SERVICE`` semantics, replay by publication
  age, :mod:`tipcrpc.events` objects (mirrors ``net/tipc/subscr.c``);
* :mod:`.bindings` — one socket's publications and their keys (``tipc_sk_publish``);
* :mod:`.topsrv` — subscriptions as async iterators (layer L3: the only module here that
  uses the event loop; not imported by this ``__init__``, so pure users stay free of it).

Everything else is pure (layer L1).
"""

from .bindings import Bindings, as_range, check_scope
from .subscr import Subscription, make_event, subscribe
from .table import PUBLISHED, WITHDRAWN, NameTable, Publication

__all__ = [
    "PUBLISHED",
    "WITHDRAWN",
    "NameTable",
    "Publication",
    "Subscription",
    "subscribe",
    "make_event",
    "Bindings",
    "as_range",
    "check_scope",
]
