"""Generic netlink loads 16 of pyroute2's ~160 modules; the rest of pyroute2 still works.

Run in a fresh interpreter: the test process has imported pyroute2 in full already.
"""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import json, sys
import tipcrpc.transport.kernel.netlink
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "pyroute2")
from pyroute2 import IPRoute, netns          # the whole library on first use of the package
import pyroute2
print(json.dumps({"loaded": loaded, "ndb_after": "pyroute2.ndb" in sys.modules, "iproute": IPRoute.__name__,
                  "version": pyroute2.__version__, "netns": netns.__name__}))
try:
    pyroute2.no_such_name
except AttributeError as exc:
    print(exc)
"""


def test_netlink_imports_only_what_it_uses_and_pyroute2_still_works_in_full() -> None:
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    first, second = proc.stdout.splitlines()
    out = json.loads(first)
    assert "pyroute2.netlink.generic" in out["loaded"] and len(out["loaded"]) <= 20, out["loaded"]
    assert not any(m.startswith(("pyroute2.ndb", "pyroute2.ipdb", "pyroute2.iproute")) for m in out["loaded"])
    assert (out["ndb_after"], out["iproute"], out["netns"]) == (True, "IPRoute", "pyroute2.netns")
    assert out["version"][0].isdigit()
    assert second == "module 'pyroute2' has no attribute 'no_such_name'"
