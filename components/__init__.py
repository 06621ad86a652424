"""The pipeline's stages: each is ``run(config, inputs, output)`` writing one artifact directory."""
