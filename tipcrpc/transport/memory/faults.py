"""Fault settings for the memory cluster's links (seeded, deterministic chaos).

TIPC links are reliable and ordered: a lost packet is retransmitted, so "loss" shows up
as extra latency and head-of-line blocking, never as a missing message. Duplication never
happens on a real TIPC link; it is offered only as an explicit chaos option for testing
duplicate suppression in layers above the transport.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["LinkFaults", "NO_FAULTS"]

#: Cap on consecutive simulated retransmissions of one message (keeps delays bounded
#: even with ``loss`` close to 1).
_MAX_RETRANSMITS = 32


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """How a link misbehaves for data messages.

    Attributes:
        delay: fixed one-way latency in seconds added to every message.
        jitter: extra uniform random latency in ``[0, jitter)`` seconds. Order per
            sender/receiver node pair is preserved regardless (a late message holds
            back the ones behind it, as on a TIPC link).
        loss: probability that one transmission of a message is lost; every loss costs
            ``retransmit_delay`` seconds (geometric number of retries). Never loses data.
        retransmit_delay: the cost in seconds of one simulated retransmission.
        duplicate: probability that a data message is delivered twice (chaos only:
            real TIPC never duplicates).
    """

    delay: float = 0.0
    jitter: float = 0.0
    loss: float = 0.0
    retransmit_delay: float = 0.005
    duplicate: float = 0.0

    def __post_init__(self) -> None:
        for name in ("delay", "jitter", "retransmit_delay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ValueError(f"LinkFaults.{name} must be a number of seconds >= 0, got {value!r}")
        for name in ("loss", "duplicate"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < 1:
                raise ValueError(f"LinkFaults.{name} must be a probability in [0, 1), got {value!r}")

    @property
    def is_null(self) -> bool:
        """True if this setting changes nothing (the fast path)."""
        return not (self.delay or self.jitter or self.loss or self.duplicate)

    def latency(self, rng: random.Random) -> float:
        """Draw the extra latency of one message, in seconds."""
        latency = self.delay
        if self.jitter:
            latency += self.jitter * rng.random()
        if self.loss:
            retries = 0
            while retries < _MAX_RETRANSMITS and rng.random() < self.loss:
                retries += 1
            latency += retries * self.retransmit_delay
        return latency

    def duplicates(self, rng: random.Random) -> bool:
        """Draw whether one data message is delivered twice."""
        return bool(self.duplicate) and rng.random() < self.duplicate


NO_FAULTS = LinkFaults()
