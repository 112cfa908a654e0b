"""The ``spxcast`` command line: one module per verb group, each a thin wrapper over library functions."""
