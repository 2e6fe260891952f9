"""What a model is on disk and how it is built: model-config YAML, HF folders, checkpoints, position limits."""
