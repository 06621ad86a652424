"""Corpus readers, Beam jobs and the TFRecord dataset format."""

from pipeline import _legacy_keras  # noqa: F401  (must run before TensorFlow is imported)
