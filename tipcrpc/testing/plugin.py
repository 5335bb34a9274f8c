"""pytest plugin for tipcrpc (registered as the ``pytest11`` entry point ``tipcrpc``).

Kept import-light: it is loaded in every pytest run of any project that has tipcrpc
installed, so the transport modules are imported only when a fixture is used.
"""

from __future__ import annotations
