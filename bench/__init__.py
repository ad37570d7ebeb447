"""pi_mesh_plugin's benchmark suite: ``python -m bench`` / ``make bench``.

See :mod:`bench.__main__` for the options and BENCHMARKS.md for the latest figures.
"""
