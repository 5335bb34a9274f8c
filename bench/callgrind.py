"""Exact instruction counts: a command under valgrind's callgrind at two repeat counts.

The difference of the two totals, divided by the difference in repeats, is the cost of one
repeat with start-up and warm-up cancelled out. Used by ``callpath.py``
(``--measure-instructions``), ``rpc_layers.py`` and ``user_layers.py``.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from typing import Callable, Sequence


def instructions_per_repeat(argv: Callable[[int], Sequence[str]], n1: int, n2: int) -> float:
    """Instructions per repeat of ``argv(n)`` (a command doing ``n`` repeats), from callgrind
    runs with ``n1`` and ``n2`` repeats. Needs ``valgrind`` on the PATH."""
    counts = []
    for n in (n1, n2):
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "cg.out")
            cmd = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv(n)]
            # a fixed hash seed: dict and set layouts (and so the count) repeat run to run
            env = {**os.environ, "PYTHONHASHSEED": "0"}
            res = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
            m = re.search(r"Collected : (\d+)", res.stderr)
            if m is None:
                raise RuntimeError(f"no instruction count in callgrind output: {res.stderr[-500:]}")
            counts.append(int(m.group(1)))
    return (counts[1] - counts[0]) / (n2 - n1)
