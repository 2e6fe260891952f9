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

__all__ = ["polynomial_decay_lr", "polynomial_decay_scheduler", "resolve_warmup_steps", "warmup_warning"]

# An unset --warmup_steps warms up over this share of the run, at most MAX_AUTO_WARMUP steps: the old
# fixed default of 1000 for the default 10,000 steps, and still a short warmup for a 30-step run.
AUTO_WARMUP_FRACTION = 0.1
MAX_AUTO_WARMUP = 1000


def resolve_warmup_steps(warmup_steps: int | None, max_steps: int) -> int:
    """``warmup_steps`` when set, else ``AUTO_WARMUP_FRACTION`` of ``max_steps`` (at most 1000)."""
    if warmup_steps is not None:
        return int(warmup_steps)
    return min(MAX_AUTO_WARMUP, int(max_steps * AUTO_WARMUP_FRACTION))


def warmup_warning(warmup_steps: int, max_steps: int) -> str | None:
    """One line when warmup takes most of the run (over half of it), else ``None``.

    A run that never leaves warmup trains at a fraction of its learning rate and ends near the loss of
    a uniform guess, which looks like a broken model rather than a schedule problem.
    """
    if max_steps <= 0 or 2 * warmup_steps <= max_steps:
        return None
    suggestion = resolve_warmup_steps(None, max_steps)
    if warmup_steps >= max_steps:
        what = (
            f"--warmup_steps {warmup_steps} >= --max_steps {max_steps}: the learning rate never reaches "
            "--learning_rate and the run ends still warming up"
        )
    else:
        what = (
            f"--warmup_steps {warmup_steps} is {warmup_steps / max_steps:.0%} of --max_steps {max_steps}: "
            "most of the run trains below --learning_rate"
        )
    return f"warning: {what}; use --warmup_steps {suggestion} (10% of the run) or leave it unset"


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
