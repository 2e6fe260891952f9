"""Task registry and the built-in ``transformer-task``."""
