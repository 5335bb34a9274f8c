"""A service for the CLI tests: served by ``tipcrpc serve cli_demo:calc`` in a subprocess."""

from __future__ import annotations

from typing import AsyncIterator

import tipcrpc

calc = tipcrpc.Service("test.cli.calc")


@calc.method
async def add(a: int, b: int = 0) -> int:
    """Add two integers."""
    return a + b


@calc.method(idempotent=True, importance="high")
def echo(value: object) -> object:
    return value


@calc.method
async def count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


@calc.method
def boom() -> None:
    raise RuntimeError("kaboom")
