#!/bin/sh
# Run the kernel test tier inside the ktipc QEMU guest (a real Linux kernel with TIPC).
#
#   sh tests/kernel/run-in-guest.sh [extra pytest args]
#
# Resolves ../shared/ktipc/run-in-guest relative to the repository root. When it is
# missing: fail loudly under CI (CI=true), otherwise explain and exit 0 (natively these
# tests skip: this machine's kernel has no AF_TIPC).
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=${KTIPC_RUN_IN_GUEST:-$ROOT/../shared/ktipc/run-in-guest}
cd "$ROOT"
if [ ! -x "$GUEST" ]; then
    if [ "${CI:-}" = "true" ]; then
        echo "run-in-guest.sh: $GUEST not found: CI must run the kernel tier" >&2
        exit 1
    fi
    echo "run-in-guest.sh: $GUEST not found; kernel tier not run" >&2
    exit 0
fi
if [ ! -x .venv/bin/python ]; then
    echo "run-in-guest.sh: no .venv in $ROOT (run ./dev test once)" >&2
    exit 1
fi
# Python in the guest is ~10x slower than natively: the per-test timeout is raised to match,
# and the whole guest run may take 40 min on a busy host (about 6 min on a quiet one).
exec "$GUEST" --timeout 2400 -- .venv/bin/python -m pytest tests/kernel tests/unit/test_kernel_wire.py -q -rs -o timeout=300 "$@"
