"""tipcrpc benchmark harness (not part of the test suite; see bench/README.md).

One command, ``python -m bench``, runs every row in interleaved rounds and writes
``bench/results/results.md`` (tables) and ``bench/results/results.png`` (chart) plus the raw
JSON they were rendered from.
"""
