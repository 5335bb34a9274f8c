"""The demo service: a calculator published under the name ``demo.calc``."""

from __future__ import annotations

import os

import tipcrpc

calc = tipcrpc.Service("demo.calc")


@calc.method(idempotent=True)
async def add(a: int, b: int) -> int:
    """Add two integers (idempotent: safe to retry on another instance)."""
    return a + b


@calc.method(idempotent=True)
def whoami() -> int:
    """The serving process id, so the demo can show who answered."""
    return os.getpid()


@calc.method
async def count(n: int):
    """Stream ``0..n-1``."""
    for i in range(n):
        yield i
