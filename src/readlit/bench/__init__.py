"""Side-by-side measurements, one module per benchmark: ``python -m readlit.bench <name>`` (see :mod:`.cli`).

Every benchmark prints one table and writes it as JSON and Markdown (``experiments/bench/<name>.json`` / ``.md``
unless ``--out`` says otherwise). Benchmarks are not tests: the tests check that each speed lever computes the plain
path's numbers, and that each benchmark runs and writes its files.
"""

from readlit.bench.cli import main

__all__ = ["main"]
