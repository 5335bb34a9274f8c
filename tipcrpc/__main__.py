"""``python -m tipcrpc``: the ``tipcrpc`` command (see :mod:`tipcrpc.cli`)."""

from .cli import main

raise SystemExit(main())
