"""Performance scripts; their latest figures live in docs/benchmarks.md."""

import os
import platform

import seqtutor  # noqa: F401  (selects Keras 2 before any benchmark imports TensorFlow)


def machine() -> str:
    """The machine a figure came from, as the benchmarks print it."""
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
