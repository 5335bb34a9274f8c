"""pytest plugin for tipcrpc (registered as the ``pytest11`` entry point ``tipcrpc``).

Fixtures:

* ``memory_cluster`` — a fresh :class:`~tipcrpc.transport.memory.MemoryCluster` per test,
  seeded with ``--tipcrpc-seed`` (default 0); every node still open is closed afterwards;
* ``memory_transport`` — an opened node of that cluster.

Both are async fixtures, declared with ``pytest_asyncio.fixture`` so they work in
pytest-asyncio's default *strict* mode (mark the tests ``@pytest.mark.asyncio``) as well as
in ``asyncio_mode = "auto"``.

Kept import-light: it is loaded in every pytest run of any project that has tipcrpc
installed, so the transport modules are imported only when a fixture is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterator, Callable, TypeVar, cast

import pytest

if TYPE_CHECKING:
    from ..transport.memory import MemoryCluster, MemoryTransport

F = TypeVar("F", bound=Callable[..., Any])

_fixture: Callable[..., Any]
try:
    # Strict mode (pytest-asyncio's default) only runs async fixtures declared with its own
    # decorator; auto mode accepts both.
    from pytest_asyncio import fixture as _fixture
except ImportError:  # pytest-asyncio absent: the fixtures are unusable anyway, keep loading cheap
    _fixture = pytest.fixture


def _async_fixture(func: F) -> F:
    return cast(F, _fixture(func))


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tipcrpc")
    group.addoption(
        "--tipcrpc-seed",
        type=int,
        default=0,
        help="seed of the memory_cluster fixture's MemoryCluster (default 0)",
    )


@_async_fixture
async def memory_cluster(request: pytest.FixtureRequest) -> AsyncIterator[MemoryCluster]:
    """A fresh, seeded in-process TIPC cluster; its open nodes are closed after the test."""
    from ..transport.memory import MemoryCluster

    cluster = MemoryCluster(seed=request.config.getoption("--tipcrpc-seed"))
    try:
        yield cluster
    finally:
        await cluster.aclose()


@_async_fixture
async def memory_transport(memory_cluster: MemoryCluster) -> AsyncIterator[MemoryTransport]:
    """An opened node of ``memory_cluster``."""
    async with memory_cluster.node() as node:
        yield node
