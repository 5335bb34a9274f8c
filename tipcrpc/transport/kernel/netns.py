"""Create sockets inside a named network namespace without forking.

A socket belongs to the network namespace it was created in for its whole life, and
``setns(2)`` switches the namespace of the *calling thread* only. So switching the thread
into the target namespace, creating the socket and switching back lets one process drive
several TIPC nodes (one per netns) — how the kernel test tier builds clusters.

(pyroute2's ``netns.create_socket`` does the same through a forked child process, which
costs tens of milliseconds per socket inside the slow test guest.)
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
from typing import Callable, Iterator, Optional, TypeVar

from ...errors import KernelError, TransportUnavailable

__all__ = ["NETNS_RUN_DIR", "netns_path", "entered", "create_socket", "call_in"]

NETNS_RUN_DIR = "/var/run/netns"
_CLONE_NEWNET = 0x40000000
_libc: Optional[ctypes.CDLL] = None
T = TypeVar("T")


def _setns(fd: int) -> None:
    global _libc
    setns = getattr(os, "setns", None)  # Python >= 3.12
    if setns is not None:
        setns(fd, _CLONE_NEWNET)
        return
    if _libc is None:
        # the process's own symbols (libc is loaded): ctypes.util.find_library would run
        # ldconfig/gcc in subprocesses, seconds inside the emulated test guest
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def netns_path(netns: str) -> str:
    """``/var/run/netns/<name>`` for a bare name (as ``ip netns`` names them), else the path."""
    return netns if "/" in netns else os.path.join(NETNS_RUN_DIR, netns)


@contextlib.contextmanager
def entered(netns: Optional[str]) -> Iterator[None]:
    """Run the body with the current thread inside ``netns`` (no-op for ``None``).

    Keep the body short and synchronous: everything the thread does meanwhile (including
    other event-loop callbacks, if you awaited) would happen inside that namespace.
    """
    if netns is None:
        yield
        return
    path = netns_path(netns)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise TransportUnavailable(f"network namespace {netns!r} does not exist ({path})") from None
    except OSError as exc:
        raise KernelError(exc.errno or errno.EIO, f"cannot open network namespace {path}: {exc.strerror}") from None
    try:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        os.close(target)
        raise
    try:
        try:
            _setns(target)
        except PermissionError:
            raise TransportUnavailable(f"entering network namespace {netns!r} needs CAP_SYS_ADMIN") from None
        except OSError as exc:
            raise KernelError(exc.errno or errno.EIO, f"setns({path}): {exc.strerror}") from None
        try:
            yield
        finally:
            _setns(home)
    finally:
        os.close(target)
        os.close(home)


def create_socket(netns: Optional[str], family: int, type: int, proto: int = 0) -> socket.socket:
    """``socket.socket(family, type, proto)`` created inside ``netns``."""
    with entered(netns):
        return socket.socket(family, type, proto)


def call_in(netns: Optional[str], fn: Callable[[], T]) -> T:
    """Call ``fn()`` with the thread inside ``netns`` (for short synchronous work)."""
    with entered(netns):
        return fn()
