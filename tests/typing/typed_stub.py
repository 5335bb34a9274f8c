"""Checked by mypy in tests/unit/test_typed_stub.py: a stub built from a Service with an
interface is typed from the interface's signatures (never run, only type-checked)."""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator, Protocol

if not TYPE_CHECKING:  # reveal_type is a mypy builtin; the file is only type-checked
    reveal_type = print

import tipcrpc


class CalcAPI(Protocol):
    async def add(self, a: int, b: int) -> int: ...

    def count(self, n: int) -> AsyncIterator[int]: ...


calc = tipcrpc.Service("typing.calc", interface=CalcAPI)


@calc.method
async def add(a: int, b: int) -> int:
    return a + b


@calc.method
async def count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def use(client: tipcrpc.Client) -> None:
    total = await client.stub(calc).add(1, 2)
    reveal_type(total)
    async for item in client.options(timeout=1.0).stub(calc).count(3):
        reveal_type(item)
    untyped = client.stub("typing.other")
    reveal_type(untyped)
