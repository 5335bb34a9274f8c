"""Call options, kept apart from a method's own arguments (layer L1, pure).

Every positional and keyword argument given to ``client.call(service, method, ...)`` and to
stub methods reaches the method, whatever its parameter names; how the call is made —
deadline, routing, retries, priority, metadata — is a :class:`CallOptions` value chosen with
``client.options(...)`` or ``stub.with_options(...)``::

    await client.options(timeout=1.0, key="alice").call(kv, "put", key="alice", value="x")
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Mapping

from ..addr import U32_MAX, Importance, ServiceRange
from ..errors import AddressError, UsageError
from .service import importance_of

__all__ = ["CallOptions", "DEFAULT_OPTIONS"]


@dataclass(frozen=True, slots=True)
class CallOptions:
    """How a call is made. Every field has a neutral default.

    ``timeout``: seconds bounding the whole call, failover included; it travels to the
    server, which cancels the handler when it passes (``None``: the client's
    ``default_timeout``; streams: no limit). ``key``: route to the instance owning this
    key (int = the instance; str/bytes hashed over the published ranges). ``instance``: route
    to this instance. ``instances``: for ``call_all``, the instance range ``(lower, upper)``
    (inclusive, or a ``range``) whose publications are called, as TIPC multicast does.
    ``wait_ready``: wait (until the deadline) for an instance to be published instead of
    failing with ServiceUnreachable. ``idempotent`` / ``importance``: override what the
    client knows of the method. ``metadata``: a small map with string keys sent with the
    call (``tipcrpc.current_call().metadata`` on the server): tracing ids and the like.
    ``credit``: stream items in flight before the consumer takes them.
    """

    timeout: float | None = None
    key: object = None
    instance: int | None = None
    instances: tuple[int, int] | None = None
    wait_ready: bool = False
    idempotent: bool | None = None
    importance: Importance | None = None
    metadata: Mapping[str, Any] | None = None
    credit: int = 64

    def __post_init__(self) -> None:
        t = self.timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t >= 0):
            raise UsageError(f"timeout must be a non-negative number of seconds or None, got {t!r}")
        if self.instance is not None:
            _check_instance("instance", self.instance)
            if self.key is not None:
                raise UsageError("pass either key= or instance=, not both")
        if self.instances is not None:
            rng = self.instances
            if isinstance(rng, range):
                if rng.step != 1 or len(rng) == 0:
                    raise UsageError(f"instances must be a non-empty range with step 1, got {rng!r}")
                rng = (rng.start, rng.stop - 1)
            elif isinstance(rng, ServiceRange):
                rng = (rng.lower, rng.upper)
            if not (isinstance(rng, tuple) and len(rng) == 2):
                raise UsageError(f"instances must be (lower, upper) or a range, got {self.instances!r}")
            _check_instance("lower", rng[0])
            _check_instance("upper", rng[1])
            if rng[0] > rng[1]:
                raise UsageError(f"instances: lower {rng[0]} is above upper {rng[1]}")
            object.__setattr__(self, "instances", rng)
        if self.wait_ready is not True and self.wait_ready is not False:
            raise TypeError(f"wait_ready must be True or False, got {self.wait_ready!r}")
        if self.idempotent is not None and self.idempotent is not True and self.idempotent is not False:
            raise TypeError(f"idempotent must be True, False or None, got {self.idempotent!r}")
        if self.importance is not None:
            object.__setattr__(self, "importance", importance_of(self.importance))
        if self.metadata is not None:
            if not isinstance(self.metadata, Mapping) or not all(isinstance(k, str) for k in self.metadata):
                raise UsageError("metadata must be a mapping with string keys")
            object.__setattr__(self, "metadata", dict(self.metadata))
        if isinstance(self.credit, bool) or not isinstance(self.credit, int) or not 1 <= self.credit <= 0xFFFF:
            raise UsageError(f"credit must be in 1..65535, got {self.credit!r}")

    def merged(self, **changes: Any) -> CallOptions:
        """A copy with ``changes`` applied (unknown names raise :class:`TypeError`)."""
        unknown = set(changes) - _NAMES
        if unknown:
            raise TypeError(f"unknown call options: {', '.join(sorted(unknown))} (known: {', '.join(sorted(_NAMES))})")
        if "key" in changes and changes["key"] is not None and "instance" not in changes:
            changes["instance"] = None  # the newer routing choice wins
        elif "instance" in changes and changes["instance"] is not None and "key" not in changes:
            changes["key"] = None
        return replace(self, **changes)


def _check_instance(what: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {value!r}")
    if not 0 <= value <= U32_MAX:
        raise AddressError(f"{what} must be an instance in 0..{U32_MAX}, got {value}")


_NAMES = frozenset(f.name for f in fields(CallOptions))

#: The options of a plain ``client.call(...)``.
DEFAULT_OPTIONS = CallOptions()
