"""The ``tipcrpc`` command (layer L5): operate a TIPC cluster and its services.

Run ``tipcrpc --help`` or ``python -m tipcrpc --help``; see docs/cli.md. :func:`main` is the
console script's entry point and can be called with an argument list (it returns the exit
status instead of exiting).
"""

from .app import EXIT_FAILED, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE, main

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_UNAVAILABLE"]
