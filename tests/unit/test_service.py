"""Service definitions: registration, metadata, argument validation."""

from __future__ import annotations

from typing import AsyncIterator, Iterator

import pytest

from tipcrpc.addr import Importance, service_type
from tipcrpc.errors import AddressError, InvalidArguments
from tipcrpc.rpc.service import MethodKind, Service, importance_of, lookup_service


def make() -> Service:
    svc = Service("test.unit.svc")

    @svc.method
    async def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    @svc.method(idempotent=True, importance="high", name="ping")
    def _ping() -> str:
        return "pong"

    @svc.method
    async def count(n: int, *, start: int = 0) -> AsyncIterator[int]:
        for i in range(start, n):
            yield i

    @svc.method
    def gen(n: int) -> Iterator[int]:
        yield from range(n)

    return svc


def test_name_to_type_and_explicit_type() -> None:
    assert Service("a.b").type == service_type("a.b")
    assert Service("a.b", type=18888).type == 18888
    for bad in (63, 0, 2**32, True, "x"):
        with pytest.raises(AddressError):
            Service("a.b", type=bad)  # type: ignore[arg-type]
    with pytest.raises(AddressError):
        Service("")


def test_metadata() -> None:
    svc = make()
    assert set(svc.methods) == {"add", "ping", "count", "gen"}
    add, ping, count, gen = (svc.methods[n] for n in ("add", "ping", "count", "gen"))
    assert add.kind is MethodKind.ASYNC and not add.idempotent and add.importance is Importance.LOW
    assert add.doc == "Add."
    assert ping.kind is MethodKind.SYNC and ping.idempotent and ping.importance is Importance.HIGH
    assert count.kind is MethodKind.ASYNC_STREAM and count.streaming
    assert gen.kind is MethodKind.SYNC_STREAM and gen.streaming
    assert lookup_service(svc.type) is svc


def test_decorator_returns_function_unchanged() -> None:
    svc = Service("test.unit.plain")

    def f(x: int) -> int:
        return x

    assert svc.method(f) is f
    assert svc.method(idempotent=True, name="g")(f) is f
    with pytest.raises(ValueError, match="already has"):
        svc.method(f)


def test_bind_validates_arguments() -> None:
    svc = make()
    svc.methods["add"].bind([1, 2], {})
    svc.methods["add"].bind([1], {"b": 2})
    svc.methods["count"].bind([3], {"start": 1})
    with pytest.raises(InvalidArguments, match="missing a required argument"):
        svc.methods["add"].bind([1], {})
    with pytest.raises(InvalidArguments, match="too many"):
        svc.methods["add"].bind([1, 2, 3], {})
    with pytest.raises(InvalidArguments, match="unexpected keyword"):
        svc.methods["count"].bind([3], {"stop": 1})
    with pytest.raises(InvalidArguments) as info:
        svc.methods["count"].bind([], {})
    assert info.value.details["method"] == "count"


def test_importance_parsing() -> None:
    assert importance_of("Critical") is Importance.CRITICAL
    assert importance_of(1) is Importance.MEDIUM
    assert importance_of(Importance.HIGH) is Importance.HIGH
    for bad in ("urgent", 7, None):
        with pytest.raises(ValueError):
            importance_of(bad)  # type: ignore[arg-type]


class Account:
    """A module-level class, referenced by a (string) annotation below."""


def test_invalid_arguments_show_the_signature_as_written() -> None:
    # This module uses `from __future__ import annotations`: every annotation is a string.
    svc = Service("test.unit.signature")

    @svc.method
    def transfer(account: str, amount: int, *, to: Account | None = None) -> dict[str, int]:
        return {}

    @svc.method
    def later(x: NotDefinedAnywhere, y: int = 1) -> None:  # type: ignore[name-defined]  # noqa: F821
        return None

    with pytest.raises(InvalidArguments) as info:
        svc.methods["transfer"].bind(["alice"], {})
    message = info.value.message
    assert message.startswith("transfer(account: str, amount: int, *, to: ")
    assert "Account | None = None) -> dict[str, int]: missing a required argument: 'amount'" in message
    assert "'str'" not in message and "'int'" not in message
    assert info.value.details["signature"] == message.split(": missing")[0].removeprefix("transfer")
    with pytest.raises(InvalidArguments) as info:
        svc.methods["later"].bind([], {"z": 1})
    # the annotation cannot be evaluated: shown verbatim, still without quotes
    assert info.value.message.startswith("later(x: NotDefinedAnywhere, y: int = 1) -> None: ")
