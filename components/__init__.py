"""The pipeline's stages: each is ``run(config, inputs, output)`` writing one artifact directory."""

from pipeline import _legacy_keras  # noqa: F401  (must run before TensorFlow is imported)
