"""Domain knowledge (vocabulary, encoding, task reward, statistics), one module per domain."""

from pipeline import _legacy_keras  # noqa: F401  (must run before TensorFlow is imported)
