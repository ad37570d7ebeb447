"""The torture suite: crash, contention and hostile-input scenarios with published figures.

``python -m tests.torture --full`` runs every scenario at full size, prints one line of figures each and
writes them all to ``build/torture.json``; ``tests/test_torture.py`` runs the same code at a bounded size
inside ``make test``.  Every scenario uses real OS processes.
"""
