"""Warmup + polynomial decay: exact values at the landmarks, agreement with transformers, LambdaLR stepping."""

from __future__ import annotations

import pytest
import torch

from gitnetic.modules.schedule import polynomial_decay_lr, polynomial_decay_scheduler

KW = {"lr": 1e-3, "lr_end": 1e-4, "warmup_steps": 10, "max_steps": 110}


@pytest.mark.parametrize(
    ("step", "expected"),
    [
        (0, 0.0),  # warmup starts at zero, as in transformers
        (5, 5e-4),  # mid-warmup: linear
        (10, 1e-3),  # end of warmup: the peak
        (60, 1e-4 + 0.9e-3 * 0.5),  # halfway through the decay (power 1: linear)
        (110, 1e-4),  # max_steps: lr_end
        (500, 1e-4),  # beyond: stays at lr_end
    ],
)
def test_landmark_values(step: int, expected: float) -> None:
    assert polynomial_decay_lr(step, **KW) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_power_shapes_the_decay() -> None:
    mid = polynomial_decay_lr(60, **{**KW, "power": 2.0})
    assert mid == pytest.approx(1e-4 + 0.9e-3 * 0.25)
    assert polynomial_decay_lr(60, **{**KW, "power": 0.5}) > polynomial_decay_lr(60, **KW) > mid


def test_matches_transformers_polynomial_schedule() -> None:
    from transformers import get_polynomial_decay_schedule_with_warmup

    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=KW["lr"])
    hf = get_polynomial_decay_schedule_with_warmup(
        opt, num_warmup_steps=10, num_training_steps=110, lr_end=1e-4, power=1.5
    )
    for step in range(0, 120, 7):
        expected = KW["lr"] * hf.lr_lambdas[0](step)
        assert polynomial_decay_lr(step, **KW, power=1.5) == pytest.approx(expected, rel=1e-12)


def test_degenerate_lengths_do_not_divide_by_zero() -> None:
    # max_steps == warmup_steps (transformers divides by zero here) and no warmup at all
    assert polynomial_decay_lr(10, lr=1.0, lr_end=0.0, warmup_steps=10, max_steps=10) == 0.0
    assert polynomial_decay_lr(0, lr=1.0, lr_end=0.0, warmup_steps=0, max_steps=4) == 1.0
    assert polynomial_decay_lr(2, lr=1.0, lr_end=0.0, warmup_steps=0, max_steps=4) == 0.5


def test_scheduler_steps_per_optimizer_step_and_resumes_from_state() -> None:
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.AdamW([param, torch.nn.Parameter(torch.zeros(1))], lr=KW["lr"])
    sched = polynomial_decay_scheduler(opt, **KW)
    seen = []
    for _ in range(30):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([polynomial_decay_lr(s, **KW) for s in range(30)])
    # a fresh scheduler loaded from the state continues at step 30 (the schedule itself is not stored)
    opt2 = torch.optim.AdamW(
        [torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))], lr=KW["lr"]
    )
    sched2 = polynomial_decay_scheduler(opt2, **KW)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert opt2.param_groups[0]["lr"] == pytest.approx(polynomial_decay_lr(30, **KW))
    sched2.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(polynomial_decay_lr(31, **KW))


# ------------------------------------------------------------------------------------------- warmup
def test_unset_warmup_is_a_tenth_of_the_run_at_most_1000() -> None:
    from gitnetic.modules.schedule import resolve_warmup_steps

    assert resolve_warmup_steps(None, 30) == 3
    assert resolve_warmup_steps(None, 10_000) == 1000  # the old fixed default, for the default max_steps
    assert resolve_warmup_steps(None, 100_000) == 1000
    assert resolve_warmup_steps(20, 250) == 20  # set explicitly (params.yaml): kept as is


@pytest.mark.parametrize(
    ("warmup", "max_steps", "expected"),
    [
        (1000, 30, ">= --max_steps 30"),  # the bare-train trap: never leaves warmup
        (30, 30, ">= --max_steps 30"),
        (20, 30, "67% of --max_steps 30"),  # most of the run
        (15, 30, None),  # exactly half: not most
        (20, 250, None),  # the default pipeline
        (1000, 10_000, None),
        (0, 5, None),
    ],
)
def test_warmup_warning_only_when_warmup_takes_most_of_the_run(warmup, max_steps, expected) -> None:
    from gitnetic.modules.schedule import warmup_warning

    message = warmup_warning(warmup, max_steps)
    if expected is None:
        assert message is None
    else:
        assert message is not None and expected in message and "\n" not in message
        assert "--warmup_steps 3 " in message  # the suggested value: 10% of 30 steps
