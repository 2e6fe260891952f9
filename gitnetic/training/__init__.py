"""Trainer wrapper, LR schedule and checkpoint callbacks."""
