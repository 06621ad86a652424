"""Sequence Tutor pipeline: configuration, artifacts, local runner, KFP compiler and CLI."""

from pipeline import _legacy_keras  # noqa: F401  (must run before TensorFlow is imported)

__version__ = "0.1.0"
