"""Test helpers for tipcrpc users and transports (layer L5).

Exports are resolved lazily so that the pytest plugin (:mod:`tipcrpc.testing.plugin`),
which lives in this package and is loaded by every pytest run, stays cheap to import.
"""

from __future__ import annotations
