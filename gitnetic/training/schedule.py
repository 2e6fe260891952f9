"""Learning-rate schedule: linear warmup, then polynomial decay from ``lr`` to ``lr_end``.

This is the RoBERTa/BERT pretraining schedule (``power=1`` is linear decay) and matches
``transformers.get_polynomial_decay_schedule_with_warmup`` value for value. We keep our own copy because
the transformers version divides by zero when ``max_steps == warmup_steps`` and refuses ``lr_end == lr``,
and because the scheduler must be rebuilt from the *current* ``max_steps`` on resume: a plain function
(not a stateful callable) as the ``LambdaLR`` lambda keeps the schedule out of the checkpoint, while the
step counter (``last_epoch``) is restored from it.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

__all__ = ["polynomial_decay_lr", "polynomial_decay_scheduler"]


def polynomial_decay_lr(
    step: int,
    *,
    lr: float,
    lr_end: float = 0.0,
    warmup_steps: int = 0,
    max_steps: int,
    power: float = 1.0,
) -> float:
    """The learning rate after ``step`` optimizer steps.

    ``0 → lr`` linearly over ``warmup_steps`` (step 0 trains at lr 0, as in transformers), then
    ``lr_end + (lr - lr_end) * (1 - progress) ** power`` where progress goes 0 → 1 from the end of warmup
    to ``max_steps``; ``lr_end`` afterwards.
    """
    if step < warmup_steps:
        return lr * step / max(1, warmup_steps)
    if step >= max_steps:
        return lr_end
    decay_steps = max(1, max_steps - warmup_steps)
    remaining = 1.0 - (step - warmup_steps) / decay_steps
    return lr_end + (lr - lr_end) * remaining**power


def polynomial_decay_scheduler(
    optimizer: Optimizer,
    *,
    lr: float,
    lr_end: float = 0.0,
    warmup_steps: int = 0,
    max_steps: int,
    power: float = 1.0,
) -> LambdaLR:
    """A per-optimizer-step ``LambdaLR`` following :func:`polynomial_decay_lr` (every group's base lr is ``lr``)."""
    if lr <= 0:
        raise ValueError(f"learning rate must be positive, got {lr}")

    def factor(step: int) -> float:
        return (
            polynomial_decay_lr(
                step, lr=lr, lr_end=lr_end, warmup_steps=warmup_steps, max_steps=max_steps, power=power
            )
            / lr
        )

    return LambdaLR(optimizer, factor)
