#!/bin/sh
# Instructions per add(1, 2) call of bench/callpath.py, exact (valgrind's callgrind).
#
#   sh bench/callgrind.sh TRANSPORT [N1 N2] [callpath options]    e.g.  sh bench/callgrind.sh user2
#
# Runs the call path twice under callgrind, with N1 and N2 calls (default 300 and 1300), and
# prints (total2 - total1) / (N2 - N1): start-up and warm-up cancel out. Run it from the
# checkout; PYTHON picks the interpreter (default .venv/bin/python). Needs valgrind.
set -e
T=${1:?usage: sh bench/callgrind.sh TRANSPORT [N1 N2] [callpath options]}; shift
N1=300; N2=1300
case "$1" in [0-9]*) N1=$1; N2=$2; shift 2 ;; esac
PY=${PYTHON:-.venv/bin/python}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
EXTRA="$*"
total() {
    # shellcheck disable=SC2086  # EXTRA is a list of options
    PYTHONHASHSEED=0 PYTHONPATH=. valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.$1" \
        "$PY" -m bench.callpath --transport "$T" --calls "$1" --warm 100 $EXTRA >/dev/null 2>"$OUT/err.$1" \
        || { cat "$OUT/err.$1" >&2; exit 1; }
    grep -h "^summary\|^totals" "$OUT/cg.$1" | head -1 | awk '{print $2}'
}
A=$(total "$N1"); B=$(total "$N2")
echo "$T $EXTRA: $(( (B - A) / (N2 - N1) )) instructions/call ($A @ $N1, $B @ $N2)"
