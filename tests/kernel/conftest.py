"""Kernel test tier: real AF_TIPC inside the ktipc QEMU guest (``tests/kernel/run-in-guest.sh``).

Every test here is skipped, with the reason, when ``AF_TIPC`` is unusable (no ``tipc``
module — the normal case on development machines and CI hosts) or when network
namespaces cannot be created (not root) — except inside the ktipc guest (``KTIPC_GUEST``
set), where either is a failure.

Fixtures (session-scoped clusters are shared; tests use private service types):

* ``eth_cluster`` — 3 netns nodes on a bridge, Ethernet bearers, 500 ms link tolerance;
  a test that cuts a node restores it afterwards (``restore_all`` in the harness).
* ``udp_cluster`` — 2 netns nodes over the UDP bearer on a veth pair (10.77.0.0/24).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Iterator

import pytest

from tipcrpc.transport.kernel import probe

if TYPE_CHECKING:
    from ktipc_cluster import EthCluster, UdpCluster

_HERE = os.path.dirname(os.path.abspath(__file__))
_PROBE = probe()
if not _PROBE.available:
    _SKIP = f"AF_TIPC unavailable ({_PROBE.reason}); run tests/kernel/run-in-guest.sh"
elif os.geteuid() != 0:
    _SKIP = "the kernel tier builds network namespaces: run as root (the ktipc guest does)"
else:
    _SKIP = ""


#: Inside the ktipc guest (run-in-guest exports KTIPC_GUEST=1) the tier must run: a missing
#: AF_TIPC or root there is a broken guest, so those tests fail instead of skipping.
IN_GUEST = bool(os.environ.get("KTIPC_GUEST"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return  # pytest_runtest_setup fails them instead
    marker = pytest.mark.skipif(bool(_SKIP), reason=_SKIP)
    for item in items:
        if str(item.fspath).startswith(_HERE + os.sep):
            item.add_marker(marker)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if _SKIP and IN_GUEST and str(item.fspath).startswith(_HERE + os.sep):
        pytest.fail(f"inside the ktipc guest (KTIPC_GUEST is set) the kernel tier must run: {_SKIP}", pytrace=False)


@pytest.fixture(scope="session")
def eth_cluster() -> Iterator[EthCluster]:
    from ktipc_cluster import EthCluster

    cluster = EthCluster(3, tolerance_ms=500)
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def udp_cluster() -> Iterator[UdpCluster]:
    from ktipc_cluster import UdpCluster

    cluster = UdpCluster(tolerance_ms=500)
    try:
        yield cluster
    finally:
        cluster.destroy()
