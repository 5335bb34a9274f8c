"""``python -m bench``: the one command (see bench/README.md)."""

from bench.run import main

raise SystemExit(main())
