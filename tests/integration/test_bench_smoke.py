"""Smoke run of the benchmark harness (bench/): every row and workload with tiny counts.

Not a benchmark: the numbers of a --quick run are meaningless. It checks that the one command
runs end to end, that the raw floors and peer rows produce samples, that every tipcrpc cell is
measured or an explicit ``n/a`` with a reason (an ``error`` there fails: the harness must not
hide a broken tipcrpc row), that the other rows' cells are measured or ``n/a``/``error`` with a
reason, and that the report renders.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from ci_policy import require, requires

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow

NEEDS = ("uvloop", "Pyro5", "zmq", "grpc")
_MISSING = [m for m in NEEDS if importlib.util.find_spec(m) is None]
BENCH_EXTRA = (not _MISSING, f"bench extra not installed (missing {', '.join(_MISSING)}): pip install -e .[bench]")


@pytest.mark.timeout(400)
@requires(*BENCH_EXTRA)
def test_quick_run_produces_report(tmp_path: Path) -> None:
    require(*BENCH_EXTRA)
    chart = importlib.util.find_spec("matplotlib") is not None
    cmd = [sys.executable, "-m", "bench", "--quick", "--out", str(tmp_path)] + ([] if chart else ["--no-chart"])
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)  # a bound, not a measure (busy CI)
    assert proc.returncode == 0, proc.stderr[-3000:]

    raw = json.loads((tmp_path / "raw-host.json").read_text())
    assert raw["quick"] is True and raw["mode"] == "host"
    cells = raw["cells"]
    by_row: dict[tuple[str, str], list[dict]] = {}
    for c in cells:
        assert c["status"] in ("ok", "na", "error"), c
        if c["status"] != "ok":
            assert c.get("reason"), f"a non-measured cell must say why: {c}"
        else:
            assert c["pooled"]["n"] > 0 and c["pooled"]["p50"] > 0
        by_row.setdefault((c["system"], c["variant"]), []).append(c)

    # The floors and the peers depend on nobody: their sequential cells must be measured.
    for system in ("raw-udp", "raw-unix-dgram", "raw-unix-seqpacket", "raw-tcp", "pyro5", "zmq", "grpc"):
        rows = [k for k in by_row if k[0] == system]
        assert rows, f"{system} missing from the run"
        for k in rows:
            seq = [c for c in by_row[k] if c["workload"] == "seq"]
            assert seq and all(c["status"] == "ok" for c in seq), (k, seq)
    # Both event loops ran.
    assert {"asyncio", "uvloop"} <= {v for (_s, v) in by_row}
    # tipcrpc rows are present, and none of their cells (nor the failover run) is an error.
    assert any(k[0].startswith("tipcrpc-") for k in by_row)
    errors = [c for c in cells + raw["failover"] if c["system"].startswith("tipcrpc-") and c["status"] == "error"]
    assert not errors, "tipcrpc cells failed: " + "; ".join(
        f"{c['system']}/{c['variant']}/{c['workload']}: {c.get('reason')}" for c in errors
    )
    assert raw["failover"], "the failover run produced no cell"
    # The name-table scale scenario ran with its quick N: every name seen up and down.
    (scale,) = raw["scale"]
    assert scale.get("events") == 2 * scale["n"], scale

    md = (tmp_path / "results.md").read_text()
    for heading in ("Targets", "Sequential", "64 concurrent callers", "Payload scaling", "Fan-out", "Failover",
                    "Name-table scale"):
        assert heading in md, heading
    if chart:
        assert (tmp_path / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
