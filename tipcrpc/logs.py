"""Logging: the package's loggers, ``TIPCRPC_LOG``, and rate-limited warnings (layer L0).

tipcrpc logs through the standard :mod:`logging` module, one logger per layer, all under
``"tipcrpc"``:

==============================  ==============================================================
logger                          what it says
==============================  ==============================================================
``tipcrpc.server``              INFO: serving/withdrawn names; WARNING + traceback: a handler
                                raised (INFO for a deliberate :class:`~tipcrpc.errors.RpcError`)
``tipcrpc.client``              INFO: failovers; WARNING: notifications that could not be sent
``tipcrpc.user``                INFO: links (peer nodes) up/down, own publications;
                                WARNING (rate-limited): malformed packets dropped
``tipcrpc.transport.kernel``    INFO: own publications; WARNING: no bearer, socket errors
``tipcrpc.cli``                 the ``tipcrpc`` command
==============================  ==============================================================

As a library, tipcrpc installs no handler (only a :class:`logging.NullHandler`), so nothing
is printed unless the application configures logging (``logging.basicConfig(level=...)``).
Scripts can set ``TIPCRPC_LOG=debug|info|warning|error`` instead: on import, tipcrpc then
adds one stderr handler to the ``"tipcrpc"`` logger at that level (:func:`configure_from_env`).

Messages about untrusted input (malformed packets) go through a :class:`Throttle`, so a
flood costs one line per interval with the count of what was suppressed.
"""

from __future__ import annotations

import logging
from typing import Mapping, TextIO

__all__ = ["ENV_VAR", "LEVELS", "Throttle", "configure", "configure_from_env"]

#: The environment variable read by :func:`configure_from_env`.
ENV_VAR = "TIPCRPC_LOG"
LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logging.getLogger("tipcrpc").addHandler(logging.NullHandler())


def configure(level: str, *, stream: TextIO | None = None) -> logging.Handler:
    """Send tipcrpc's log records at ``level`` (``"debug"``, ``"info"``, ``"warning"``,
    ``"error"``) and above to stderr (or ``stream``); replaces a handler added earlier by
    this function. Returns the handler. ``ValueError`` names the accepted levels."""
    try:
        lvl = LEVELS[level.strip().lower()]
    except KeyError:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}") from None
    root = logging.getLogger("tipcrpc")
    for h in [h for h in root.handlers if getattr(h, "_tipcrpc", False)]:
        root.removeHandler(h)
    handler: logging.Handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler._tipcrpc = True  # type: ignore[attr-defined]  # marks the handler this function may replace
    root.addHandler(handler)
    root.setLevel(lvl)
    return handler


def configure_from_env(environ: Mapping[str, str]) -> logging.Handler | None:
    """Apply ``TIPCRPC_LOG`` from ``environ`` if set; a bad value is reported on the
    ``tipcrpc`` logger (importing the package must not fail because of it)."""
    value = environ.get(ENV_VAR, "").strip()
    if not value:
        return None
    try:
        return configure(value)
    except ValueError as exc:
        handler = configure("warning")
        logging.getLogger("tipcrpc").warning("$%s: %s; using warning", ENV_VAR, exc)
        return handler


class Throttle:
    """At most one message per ``interval`` seconds; counts what it held back.

    Pure: the caller passes ``now`` (any monotonic clock, in seconds)::

        suppressed = throttle.allow(loop.time())
        if suppressed is not None:
            log.warning("dropped a malformed packet from %s (%d more not logged)", src, suppressed)
    """

    __slots__ = ("interval", "_next", "_held")

    def __init__(self, interval: float = 10.0) -> None:
        self.interval = interval
        self._next: float | None = None
        self._held = 0

    def allow(self, now: float) -> int | None:
        """``None`` to stay quiet, else how many were held back since the last message."""
        if self._next is not None and now < self._next:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next = now + self.interval
        return held
