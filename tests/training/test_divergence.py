"""gitnetic/training/divergence.py: a run whose loss (or, without AMP scaling, whose gradients) turns
non-finite stops with :class:`TrainingDiverged` naming the step, and no checkpoint of non-finite weights is
written, by the step checkpoints, the end-of-training save or the signal save (issue 29 item 2)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import lightning as L
import pytest
import torch

from gitnetic.models.finite import first_non_finite
from gitnetic.training.divergence import StopOnDivergence, TrainingDiverged
from gitnetic.training.resume import StepCheckpoint
from tests.helpers import checkpoint_weights


class Toy(L.LightningModule):
    """A linear regression whose loss is ``bad`` (nan, inf) at optimizer step ``at`` (1-based)."""

    def __init__(self, at: int | None, bad: float = float("nan"), grads_only: bool = False) -> None:
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)
        self.at, self.bad, self.grads_only = at, bad, grads_only

    def training_step(self, batch, batch_idx):
        loss = self.layer(batch[0]).pow(2).mean()
        if self.global_step + 1 == self.at and not self.grads_only:
            return loss * self.bad
        return loss

    def on_after_backward(self):
        if self.global_step + 1 == self.at and self.grads_only:  # a finite loss, a non-finite gradient
            self.layer.weight.grad.fill_(self.bad)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)

    def train_dataloader(self):
        data = torch.utils.data.TensorDataset(torch.randn(64, 4))
        return torch.utils.data.DataLoader(data, batch_size=4)


def fit(module: L.LightningModule, save_dir: Path, *callbacks, **kwargs) -> L.Trainer:
    trainer = L.Trainer(
        max_steps=6,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[*callbacks, StepCheckpoint(save_dir, 1, -1)],
        **kwargs,
    )
    trainer.fit(module)
    return trainer


def saved_steps(save_dir: Path) -> list[int]:
    for path in save_dir.glob("*.ckpt"):
        assert first_non_finite(checkpoint_weights(path)) is None, path
    return sorted(int(p.stem.removeprefix("checkpoint_step")) for p in save_dir.glob("checkpoint_step*.ckpt"))


@pytest.mark.parametrize(("bad", "word"), [(float("nan"), "nan"), (float("inf"), "inf")])
def test_a_non_finite_loss_at_step_k_stops_there_and_keeps_the_checkpoints_before(tmp_path, bad, word):
    with pytest.raises(TrainingDiverged) as caught:
        fit(Toy(at=3, bad=bad), tmp_path, StopOnDivergence())
    assert caught.value.step == 3
    message = str(caught.value)
    assert f"the loss became {word} at step 3" in message and "\n" not in message
    assert f"the last good checkpoint is {tmp_path / 'checkpoint_step2.ckpt'}" in message
    assert saved_steps(tmp_path) == [1, 2]
    assert checkpoint_weights(tmp_path / "checkpoint_last.ckpt").keys()  # still there, finite (above)


def test_non_finite_gradients_stop_the_run_at_their_step(tmp_path):
    with pytest.raises(TrainingDiverged) as caught:
        fit(Toy(at=4, grads_only=True), tmp_path, StopOnDivergence())
    assert caught.value.step == 4 and "the gradients became non-finite at step 4" in str(caught.value)
    assert saved_steps(tmp_path) == [1, 2, 3]


def test_a_divergence_between_logging_steps_is_caught_at_the_end_without_checkpoints(tmp_path):
    """No checkpoint due and no logging step after it: the end of training still looks (once)."""
    trainer = L.Trainer(
        max_steps=5,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        log_every_n_steps=50,
        callbacks=[StopOnDivergence()],
    )
    with pytest.raises(TrainingDiverged) as caught:
        trainer.fit(Toy(at=2))
    assert caught.value.step == 2 and "no checkpoint was saved" in str(caught.value)


def test_the_checkpoint_writer_alone_refuses_non_finite_weights(tmp_path):
    """Without the monitor (a user's own trainer), the writer's own check still keeps NaN off the disk."""
    with pytest.raises(TrainingDiverged) as caught:
        fit(Toy(at=3), tmp_path)
    message = str(caught.value)
    assert "the weights became non-finite at step 3 (layer.weight holds nan)" in message, message
    assert saved_steps(tmp_path) == [1, 2]


def test_a_finite_run_is_untouched(tmp_path):
    trainer = fit(Toy(at=None), tmp_path, StopOnDivergence())
    assert trainer.global_step == 6 and saved_steps(tmp_path) == [1, 2, 3, 4, 5, 6]


def test_first_non_finite_names_the_first_bad_floating_tensor():
    state = {"a": torch.ones(3), "ids": torch.arange(3), "b": torch.tensor([1.0, float("-inf")])}
    assert first_non_finite(state) == ("b", "-inf")
    state["a"][1] = float("nan")
    assert first_non_finite(state) == ("a", "nan")
    assert first_non_finite({"a": torch.ones(2)}) is None


def test_with_a_grad_scaler_an_inf_loss_is_the_scalers_business_and_a_nan_loss_is_fatal():
    """``16-mixed``: the GradScaler skips steps with non-finite gradients (and its scaled loss may be inf)."""
    trainer = SimpleNamespace(
        precision_plugin=SimpleNamespace(scaler=object()),
        global_step=4,
        world_size=1,
        is_global_zero=True,
        checkpoint_callback=None,
        strategy=SimpleNamespace(root_device=torch.device("cpu")),
    )
    weight = torch.nn.Parameter(torch.ones(2))
    weight.grad = torch.tensor([1.0, float("inf")])
    optimizer = torch.optim.SGD([weight], lr=0.1)
    monitor = StopOnDivergence()
    monitor.on_train_batch_start(trainer, None, None, 0)
    monitor.on_before_backward(trainer, None, torch.tensor(float("inf")))
    monitor.on_before_optimizer_step(trainer, None, optimizer)
    monitor.check(trainer)  # nothing to say
    trainer.precision_plugin.scaler = None  # the same gradients without a scaler: a divergence
    monitor.on_before_optimizer_step(trainer, None, optimizer)
    with pytest.raises(TrainingDiverged, match="the gradients became non-finite at step 5"):
        monitor.check(trainer)
    trainer.precision_plugin.scaler, fresh = object(), StopOnDivergence()
    fresh.on_train_batch_start(trainer, None, None, 0)
    fresh.on_before_backward(trainer, None, torch.tensor(float("nan")))
    with pytest.raises(TrainingDiverged, match="the loss became nan at step 5; no checkpoint was saved"):
        fresh.check(trainer)
