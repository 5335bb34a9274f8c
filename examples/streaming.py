"""Streaming methods: async generators on the server, ``async for`` on the client.

    python examples/streaming.py

* ``squares(n)`` — an async generator method; the client collects its items in order.
* ``countdown(n)`` — a plain generator method works the same way (called through a stub).
* ``naturals()`` — an endless stream. The client takes a few items and leaves the
  ``async with`` block early: the server's generator is closed at once (its ``finally``
  runs). Flow control keeps the server at most ``credit`` items ahead of the consumer.
"""

from __future__ import annotations

import asyncio

import tipcrpc

numbers = tipcrpc.Service("example.numbers")
produced = 0
closed = asyncio.Event()


@numbers.method
async def squares(n: int):
    """Stream ``0, 1, 4, ...`` (``n`` items)."""
    for i in range(n):
        yield i * i


@numbers.method
def countdown(n: int):
    """A plain generator: ``n, n-1, ..., 1``."""
    yield from range(n, 0, -1)


@numbers.method
async def naturals():
    """Never ends on its own; records how far it got and when it was closed."""
    global produced
    try:
        i = 0
        while True:
            produced += 1
            yield i
            i += 1
    finally:
        closed.set()


async def main() -> None:
    async with tipcrpc.serve(numbers, transport="memory"), tipcrpc.connect("memory") as client:
        first = [x async for x in client.stream(numbers, "squares", 5)]
        print("first 5 squares:", first)
        assert first == [0, 1, 4, 9, 16]

        stub = client.stub(numbers)
        print("countdown:", [x async for x in stub.countdown(3)])

        credit = 8
        taken = []
        async with client.options(credit=credit).stream(numbers, "naturals") as stream:
            async for x in stream:
                taken.append(x)
                if len(taken) == 3:
                    break
        print(f"left early after {taken}; the server had produced {produced} items (credit {credit})")
        assert produced <= credit + len(taken) + 1  # credit, plus credit given back, plus the one waiting
        await asyncio.wait_for(closed.wait(), 5)
        print("handler closed: the server's generator ran its finally block")
    print("streaming example done")


if __name__ == "__main__":
    asyncio.run(main())
