"""The ``tipcrpc`` command line: parsing, dispatch, exit codes and one-line errors.

Parsing uses the standard library's :mod:`argparse` (subcommands nested as iproute2's
``tipc`` nests its nouns): it gives usage, ``--help`` and typed options without a new
dependency, which matters for a tool that must run on a bare host next to ``modprobe``.

Exit codes: 0 success; 1 the operation failed (service absent, remote error, deadline,
kernel refused); 2 usage error; 3 TIPC is not usable here (module not loaded, no
permission); 130 interrupted. Errors are one line on stderr, ``tipcrpc: <what happened>;
<what to do>``, never a traceback (``TIPCRPC_LOG=debug`` logs details).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any, Callable, Sequence

from tipcrpc.errors import (
    AddressError,
    KernelError,
    TipcRpcError,
    TransportUnavailable,
    UsageError,
)

from .. import logs
from . import config, services

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNAVAILABLE", "EXIT_INTERRUPTED"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

log = logging.getLogger("tipcrpc.cli")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises instead of exiting (main() decides the exit)."""

    def error(self, message: str) -> Any:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _u32(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 0 <= value <= 0xFFFF_FFFF:
        raise argparse.ArgumentTypeError(f"must be in 0..4294967295, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("cluster")
    g.add_argument("--transport", default="auto", choices=["auto", "kernel", "user"],
                   help="kernel AF_TIPC, or join as a userspace node (auto: $TIPCRPC_TRANSPORT, else kernel if usable)")
    g.add_argument("--netns", default=None, metavar="NAME", help="kernel: run in this network namespace")
    g.add_argument("--timeout", type=_positive, default=2.0, metavar="S", help="seconds per call (default 2)")
    g.add_argument("--discovery", type=_positive, default=1.0, metavar="S",
                   help="user: at most this long to find peers (returns once links settle)")
    g.add_argument("--settle", type=_positive, default=1.0, metavar="S",
                   help="user: at most this long for the peers' publications once links are up")
    as_json = argparse.ArgumentParser(add_help=False)
    as_json.add_argument("--json", action="store_true", help="machine-readable output")

    p = _Parser(prog="tipcrpc", description="Operate a TIPC cluster and the tipcrpc services on it.",
                epilog="Docs: docs/cli.md. Exit codes: 0 ok, 1 failed, 2 usage, 3 TIPC unavailable.")
    sub = p.add_subparsers(dest="noun", metavar="COMMAND", required=True, parser_class=_Parser)

    def cmd(parent: Any, name: str, func: Callable[[Any], int], help: str, read: bool = True) -> Any:
        sp = parent.add_parser(name, help=help, description=help,
                               parents=[common, as_json] if read else [common])  # fmt: skip
        sp.set_defaults(func=func)
        if not read:
            sp.set_defaults(json=False)
        return sp

    cmd(sub, "status", config.status, "is TIPC usable here; module, identity, bearers, links; what to do if not")

    node = sub.add_parser("node", help="node identity and the nodes of the cluster").add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    cmd(node, "list", config.node_list, "nodes this node knows, and whether they are up")
    get = node.add_parser("get", help="read a node setting").add_subparsers(dest="what", required=True,
                                                                              parser_class=_Parser)  # fmt: skip
    cmd(get, "identity", config.node_get_identity, "this node's identity (kernel)")
    set_ = node.add_parser("set", help="change a node setting (kernel; root)").add_subparsers(
        dest="what", required=True, parser_class=_Parser)
    sp = cmd(set_, "identity", config.node_set_identity, "set this node's identity (before enabling a bearer)",
             read=False)  # fmt: skip
    sp.add_argument("identity", help="up to 16 bytes, e.g. the host name")
    sp = cmd(set_, "netid", config.node_set_netid, "set the cluster id (before enabling a bearer)", read=False)
    sp.add_argument("netid", type=int)

    bearer = sub.add_parser("bearer", help="enable, disable, list bearers (kernel)").add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    sp = cmd(bearer, "enable", config.bearer_enable, "enable a bearer: eth DEVICE, or udp NAME --localip IP",
             read=False)  # fmt: skip
    sp.add_argument("media", choices=["eth", "udp"])
    sp.add_argument("name", help="eth: the interface (eth0); udp: a bearer name of your choice (b1)")
    sp.add_argument("--localip", help="udp: this host's IP address")
    sp.add_argument("--localport", type=int, default=6118, help="udp: local port (default 6118)")
    sp.add_argument("--remoteip", help="udp: a peer's IP (replicast), default: multicast discovery")
    sp.add_argument("--remoteport", type=int, default=6118)
    sp.add_argument("--priority", type=int, default=None)
    sp = cmd(bearer, "disable", config.bearer_disable, "disable a bearer (its links go down)", read=False)
    sp.add_argument("name", help="eth:eth0, udp:b1 (or NAME with --media)")
    sp.add_argument("--media", choices=["eth", "udp"], default=None)
    cmd(bearer, "list", config.bearer_list, "enabled bearers")

    link = sub.add_parser("link", help="links to other nodes").add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    sp = cmd(link, "list", config.link_list, "links and their state")
    sp.add_argument("--stats", action="store_true", help="with properties and counters")

    nt = sub.add_parser("nametable", help="the name table").add_subparsers(
        dest="verb", metavar="VERB", required=True, parser_class=_Parser)
    sp = cmd(nt, "show", config.nametable_show, "every publication: Type Lower Upper Scope Port Node (+ service name)")
    sp.add_argument("--no-names", dest="names", action="store_false",
                    help="do not ask the servers for their service names")

    sp = cmd(sub, "ls", services.ls, "services by name: instances, sockets, methods")
    sp.add_argument("service", nargs="?", default=None, help="only this service (name)")

    sp = cmd(sub, "call", services.call, "call a method: tipcrpc call SERVICE METHOD [ARG...] (ARGs as JSON)",
             read=False)  # fmt: skip
    sp.add_argument("service", help="name, or type number")
    sp.add_argument("method")
    sp.add_argument("args", nargs="*", metavar="ARG", help="JSON (3, '\"text\"', '[1,2]'); non-JSON = a string")
    sp.add_argument("--kw", action="append", default=[], metavar="NAME=VALUE", help="keyword argument (JSON value)")
    sp.add_argument("--instance", type=_u32, default=None, help="call this instance")
    sp.add_argument("--key", default=None, help="route by key (int = instance; text hashed)")

    sp = cmd(sub, "watch", services.watch, "live publications (or nodes, links): the current state, then changes")
    sp.add_argument("target", nargs="?", default=None, metavar="SERVICE|TYPE[:LOWER[:UPPER]]")
    sp.add_argument("--nodes", action="store_true", help="nodes up/down")
    sp.add_argument("--links", action="store_true", help="links up/down")
    sp.add_argument("--count", type=int, default=None, metavar="N", help="exit after N changes")
    sp.add_argument("--snapshot", action="store_true", help="exit after the current state")

    sp = cmd(sub, "ping", services.ping, "health of every instance of SERVICE (serving/draining) with round trips")
    sp.add_argument("service")
    sp.add_argument("--instance", type=_u32, default=None)

    sp = cmd(sub, "serve", services.serve, "serve module:service until SIGINT/SIGTERM, then drain", read=False)
    sp.add_argument("target", metavar="MODULE[:ATTR]", help="a Service (or list of them) to import")
    sp.add_argument("--instance", type=_u32, default=None, help="publish {type, N} (default 0)")
    sp.add_argument("--instances", default=None, metavar="LOWER-UPPER", help="publish a range")
    sp.add_argument("--scope", choices=["cluster", "node"], default="cluster")
    sp.add_argument("--drain-timeout", type=_positive, default=10.0, metavar="S")
    sp.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                    help="serve Prometheus metrics on http://HOST:PORT/metrics (0: any free port)")
    sp.add_argument("--metrics-host", default="127.0.0.1")
    return p


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default: ``sys.argv[1:]``); return the exit status."""
    parser = build_parser()
    try:
        if argv is None:
            argv = sys.argv[1:]
        if not argv:
            parser.print_help()
            return EXIT_USAGE
        if list(argv) in (["-h"], ["--help"]):
            parser.print_help()
            return EXIT_OK
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:  # --help of a subcommand, or --version
            return int(exc.code or 0)
        # The command is an application: it shows tipcrpc's log (warnings; for `serve`
        # also INFO: links, publications, drain) unless TIPCRPC_LOG chose a level.
        if not os.environ.get(logs.ENV_VAR, "").strip():
            logs.configure("info" if args.func is services.serve else "warning")
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (UsageError, AddressError) as exc:
        _complain(exc)
        return EXIT_USAGE
    except TransportUnavailable as exc:
        _complain(exc)
        return EXIT_UNAVAILABLE
    except (TipcRpcError, KernelError) as exc:
        _complain(exc)
        return EXIT_FAILED
    except PermissionError as exc:
        _complain(f"{exc.strerror or exc}: changing kernel TIPC needs root (CAP_NET_ADMIN); retry with sudo")
        return EXIT_FAILED
    except OSError as exc:
        _complain(f"{exc}")
        return EXIT_FAILED


def _complain(exc: BaseException | str) -> None:
    if isinstance(exc, BaseException):
        log.debug("command failed", exc_info=exc)
        text = _one_line(exc)
    else:
        text = exc
    print(f"tipcrpc: {text}", file=sys.stderr, flush=True)

