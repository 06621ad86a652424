"""Benchmark scripts (``python -m benchmarks.<name>``); each one's docstring gives its command
and output, docs/figures.md their latest figures, benchmarks/common.py what they share, and
tests/test_benchmarks.py runs each one with ``--smoke``."""

import seqtutor  # noqa: F401  (selects Keras 2 before any benchmark imports TensorFlow)
