"""Training: the trainer wrapper, step checkpoints and their atomic writes, run fingerprints, throughput."""
