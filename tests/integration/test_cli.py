"""The ``tipcrpc`` command against a userspace cluster on loopback (real processes).

A server is started with the command itself (``tipcrpc serve cli_demo:calc``); every other
command runs as its own process, joining the cluster as a short-lived node, exactly as an
operator would use it. Each test run gets its own cluster id (netid), so parallel runs and
other tests on this host do not see each other.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
SERVICE = "test.cli.calc"
TIMEOUT_S = 30.0


def _env(netid: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(TIPCRPC_NETID=str(netid), TIPCRPC_TRANSPORT="user", PYTHONUNBUFFERED="1")
    env.pop("TIPCRPC_LOG", None)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


class Proc:
    """A long-running ``tipcrpc`` process whose stdout is read line by line with a deadline."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.p = subprocess.Popen([sys.executable, "-m", "tipcrpc", *args], env=env, cwd=HERE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
        self._buf = b""

    def line(self, timeout: float = TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        fd = self.p.stdout.fileno()  # type: ignore[union-attr]
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise AssertionError(f"no line within {timeout} s; stderr: {self.stop()[1]}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise AssertionError(f"process exited ({self.p.wait()}); stderr: {self.p.stderr.read().decode()}")  # type: ignore[union-attr]
            self._buf += chunk
        out, self._buf = self._buf.split(b"\n", 1)
        return out.decode()

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str]:
        if self.p.poll() is None:
            self.p.send_signal(sig)
        try:
            rc = self.p.wait(TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.p.kill()
            rc = self.p.wait()
        return rc, self.p.stderr.read().decode()  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def netid() -> int:
    return 1000 + (os.getpid() * 7919 + 17) % 8999


@pytest.fixture(scope="module")
def env(netid: int) -> dict[str, str]:
    return _env(netid)


def server_identity(netid: int) -> str:
    return f"cli-srv-{netid}"  # short and plain: its node id *is* the string (16 bytes at most)


@pytest.fixture(scope="module")
def server(env: dict[str, str], netid: int) -> Iterator[Proc]:
    proc = Proc(["serve", "cli_demo:calc", "--instances", "0-7", "--metrics-port", "0"],
                dict(env, TIPCRPC_USER_IDENTITY=server_identity(netid)))  # fmt: skip
    first = proc.line()
    assert first.startswith(f"serving {SERVICE} {{") and f"(node {server_identity(netid)})" in first, first
    yield proc
    rc, err = proc.stop()
    assert rc == 0, err


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tipcrpc", *args], env=env, cwd=HERE, capture_output=True,
                          text=True, timeout=TIMEOUT_S)  # fmt: skip


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tipcrpc: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


# -- services -------------------------------------------------------------------------------


def test_ls_lists_the_service_by_name_with_its_methods(env: dict[str, str], server: Proc) -> None:
    proc = run(env, "ls", "--json")
    assert proc.returncode == 0, proc.stderr
    (svc,) = [s for s in json.loads(proc.stdout) if s["service"] == SERVICE]
    (sock,) = svc["sockets"]
    assert (sock["instances"], sock["status"], sock["scope"]) == ([[0, 7]], "serving", "cluster")
    methods = {m["name"]: m for m in svc["methods"]}
    assert sorted(methods) == ["add", "boom", "count", "echo"]
    assert methods["add"]["signature"] == "(a: int, b: int = 0) -> int"
    assert methods["echo"]["idempotent"] is True and methods["echo"]["importance"] == "high"
    assert methods["count"]["streaming"] is True
    human = run(env, "ls", SERVICE)
    assert human.returncode == 0 and "add(a: int, b: int = 0) -> int" in human.stdout
    assert "[idempotent, importance high]" in human.stdout and "[streaming]" in human.stdout
    absent = run(env, "ls", "test.cli.absent")
    assert absent.returncode == 1 and "no server serves 'test.cli.absent'" in one_line_error(absent)


def test_call_unary_stream_and_keywords(env: dict[str, str], server: Proc) -> None:
    assert run(env, "call", SERVICE, "add", "1", "2").stdout == "3\n"
    assert run(env, "call", SERVICE, "add", "40", "--kw", "b=2").stdout == "42\n"
    echo = run(env, "call", SERVICE, "echo", '{"k": [1, "x", null]}')
    assert json.loads(echo.stdout) == {"k": [1, "x", None]}
    assert run(env, "call", SERVICE, "echo", "plain text").stdout == '"plain text"\n'  # not JSON: a string
    assert run(env, "call", SERVICE, "count", "3").stdout == "0\n1\n2\n"
    assert run(env, "call", SERVICE, "add", "5", "--instance", "7").stdout == "5\n"


def test_call_errors_are_one_line_with_a_nonzero_exit(env: dict[str, str], server: Proc) -> None:
    nope = run(env, "call", SERVICE, "nope")
    assert nope.returncode == 1
    assert "has no method 'nope'; it has: add, boom, count, echo" in one_line_error(nope)
    boom = run(env, "call", SERVICE, "boom")
    assert boom.returncode == 1 and "kaboom" in one_line_error(boom)
    bad = run(env, "call", SERVICE, "add")
    assert bad.returncode == 1 and "missing a required argument" in one_line_error(bad)
    absent = run(env, "call", "test.cli.absent", "x")
    assert absent.returncode == 1 and "`tipcrpc ls`" in one_line_error(absent)


def test_ping_reports_every_instance_and_fails_for_an_absent_service(env: dict[str, str], server: Proc) -> None:
    proc = run(env, "ping", SERVICE, "--json")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert (row["status"], row["instances"], row["error"]) == ("serving", [0, 7], None)
    assert row["rtt_ms"] is not None and row["rtt_ms"] > 0
    absent = run(env, "ping", "test.cli.absent")
    assert absent.returncode == 1
    assert "no instance of 'test.cli.absent' is published" in one_line_error(absent)


def test_watch_shows_the_current_state_then_live_changes(env: dict[str, str], server: Proc) -> None:
    watch = Proc(["watch", SERVICE, "--json", "--count", "2"], env)
    try:
        first = json.loads(watch.line())
        assert (first["event"], first["service"], first["lower"], first["upper"]) == ("up", SERVICE, 0, 7)
        assert json.loads(watch.line()) == {"event": "snapshot_complete"}
        second = Proc(["serve", "cli_demo:calc", "--instance", "100"], env)
        assert second.line().startswith(f"serving {SERVICE}")
        up = json.loads(watch.line())
        assert (up["event"], up["lower"], up["upper"]) == ("up", 100, 100)
        assert second.stop()[0] == 0  # SIGTERM: drained, withdrawn, exit 0
        down = json.loads(watch.line())
        assert (down["event"], down["lower"], down["port"]) == ("down", 100, up["port"])
        assert watch.p.wait(TIMEOUT_S) == 0  # --count 2 reached
    finally:
        watch.stop()


def test_watch_snapshot_of_nodes_and_a_raw_type(env: dict[str, str], server: Proc) -> None:
    nodes = run(env, "watch", "--nodes", "--snapshot", "--json")
    rows = [json.loads(x) for x in nodes.stdout.splitlines()]
    assert rows[-1] == {"event": "snapshot_complete"} and sum(r["event"] == "node_up" for r in rows) >= 2
    ls = json.loads(run(env, "ls", SERVICE, "--json").stdout)[0]
    raw = run(env, "watch", f"{ls['type']}:3", "--snapshot")  # instance 3 of the type: the 0..7 range overlaps
    assert raw.returncode == 0 and f"{{{ls['type']},0,7}}" in raw.stdout.splitlines()[0]


# -- node-level nouns on the userspace transport -----------------------------------------------


def test_nametable_node_link_status(env: dict[str, str], server: Proc, netid: int) -> None:
    table = json.loads(run(env, "nametable", "show", "--json").stdout)
    mine = [r for r in table if r["service"] == SERVICE]
    assert len(mine) == 1 and (mine[0]["lower"], mine[0]["upper"], mine[0]["scope"]) == (0, 7, "cluster")
    server_node = mine[0]["node"]
    assert mine[0]["node_identity"] == server_identity(netid)  # learned from the peer's discovery messages
    assert any(r["service"] == "tipcrpc.reflection" and r["node"] == server_node for r in table)
    assert any(r["type"] == 0 and r["node"] == server_node for r in table)  # its node-state publication
    human = run(env, "nametable", "show").stdout.splitlines()
    assert human[0].split() == ["Type", "Lower", "Upper", "Scope", "Port", "Node", "Service"]
    # $TIPCRPC_USER_IDENTITY names the node being inspected: the command's own node ignores it
    nodes = json.loads(run(dict(env, TIPCRPC_USER_IDENTITY=server_identity(netid)), "node", "list", "--json").stdout)
    assert {"identity": server_identity(netid), "address": server_node.rjust(8, "0"), "up": True} in nodes
    assert all(n["identity"] for n in nodes)  # every peer named (long identities as their node id in hex)
    human = run(env, "node", "list").stdout.splitlines()
    assert human[0].split() == ["Node", "Identity", "Hash", "State"]
    assert [server_identity(netid), server_node.rjust(8, "0"), "up"] in [line.split() for line in human[1:]]
    links = json.loads(run(env, "link", "list", "--json").stdout)
    assert links[0]["name"] == "broadcast-link" and any(lk.get("peer") == server_node for lk in links)
    status = json.loads(run(env, "status", "--json").stdout)
    assert status["transport"] == "user" and server_node in status["user"]["peers"]
    (bearer,) = json.loads(run(env, "bearer", "list", "--json").stdout)  # the command's own node's UDP bearer
    assert bearer["name"].startswith("udp:127.0.0.1:") and bearer["note"] == "this command's own short-lived node"


def test_kernel_only_settings_explain_what_to_do_on_the_user_transport(env: dict[str, str]) -> None:
    for args in (["node", "set", "identity", "n1"], ["bearer", "enable", "udp", "b1", "--localip", "127.0.0.1"],
                 ["node", "get", "identity"], ["node", "set", "netid", "12"], ["bearer", "disable", "udp:b1"]):  # fmt: skip
        proc = run(env, *args, "--transport", "user")
        assert proc.returncode == 2
        assert "every process is its own node" in one_line_error(proc)


def test_usage_errors_exit_2_with_one_line(env: dict[str, str]) -> None:
    assert run(env).returncode == 2
    for args in (["bogus"], ["call", SERVICE], ["watch"], ["serve", "no_such_module_xyz:svc"],
                 ["serve", "cli_demo:calc", "--instances", "9-2"], ["ls", "--timeout", "-1"]):  # fmt: skip
        proc = run(env, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        one_line_error(proc)
    assert run(env, "--help").returncode == 0 and "ls" in run(env, "--help").stdout


# -- metrics exporter -----------------------------------------------------------------------


def test_the_exporter_serves_prometheus_text(env: dict[str, str]) -> None:
    proc = Proc(["serve", "cli_demo:calc", "--instance", "200", "--metrics-port", "0"], env)
    try:
        first = proc.line()
        url = first.rsplit("metrics on ", 1)[1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        assert run(env, "call", SERVICE, "add", "1", "1", "--instance", "200").stdout == "2\n"
        assert run(env, "call", SERVICE, "boom", "--instance", "200").returncode == 1
        with urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
            assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = resp.read().decode()
        assert f'tipcrpc_server_calls_total{{service="{SERVICE}",method="add"}} 1' in text
        assert f'tipcrpc_server_errors_total{{service="{SERVICE}",method="boom",error="RuntimeError"}} 1' in text
        assert f'tipcrpc_server_latency_seconds_count{{service="{SERVICE}",method="add"}} 1' in text
        assert "tipcrpc_server_completed " in text
    finally:
        rc, err = proc.stop(signal.SIGINT)
    assert rc == 0, err
    assert "RuntimeError: kaboom" in err  # the handler's bug was logged with its traceback
