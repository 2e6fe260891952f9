"""Lightning internals gitnetic relies on, each checked here so that a Lightning upgrade that moves or
changes one fails with its name, instead of silently changing what training does.

* ``StepCheckpoint`` (gitnetic/training/resume.py) overrides ``ModelCheckpoint._link_checkpoint`` (a hard
  link for ``checkpoint_last.ckpt``) and calls ``_should_skip_saving_checkpoint``, ``_monitor_candidates``,
  ``_save_topk_checkpoint``, ``_save_last_checkpoint`` and reads ``_last_global_step_saved``;
* ``TransformerDataModule`` reads ``trainer._accelerator_connector.use_distributed_sampler``;
* ``ThroughputLogger`` reads ``trainer._logger_connector.should_update_logs``;
* ``AtomicCheckpointIO`` uses ``lightning.fabric.utilities.cloud_io._is_local_file_protocol``;
* ``training/signals._disarm_child_observer`` empties ``_ChildProcessObserver._child_processes`` (it skips
  silently when the class is gone, so only this test notices).
"""

from __future__ import annotations

import inspect
import os

import lightning
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from gitnetic.training.resume import StepCheckpoint


def test_model_checkpoint_members_step_checkpoint_uses_exist():
    link = inspect.getattr_static(ModelCheckpoint, "_link_checkpoint")
    assert isinstance(link, staticmethod)
    assert list(inspect.signature(ModelCheckpoint._link_checkpoint).parameters) == [
        "trainer",
        "filepath",
        "linkpath",
    ]
    for name in (
        "_should_skip_saving_checkpoint",
        "_monitor_candidates",
        "_save_topk_checkpoint",
        "_save_last_checkpoint",
    ):
        assert callable(getattr(ModelCheckpoint, name, None)), name
    assert hasattr(ModelCheckpoint(), "_last_global_step_saved")


def test_lightning_calls_the_link_override_so_checkpoint_last_is_a_hard_link(tmp_path):
    trainer = lightning.Trainer(
        max_steps=2, limit_val_batches=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
        callbacks=[StepCheckpoint(tmp_path, save_step_frequency=1, num_last_checkpoints=1)],
        default_root_dir=tmp_path,
    )  # fmt: skip
    trainer.fit(BoringModel())
    last = tmp_path / "checkpoint_last.ckpt"
    assert last.is_file() and not last.is_symlink()
    assert os.path.samefile(last, tmp_path / "checkpoint_step2.ckpt")


def test_trainer_connectors_gitnetic_reads():
    for flag in (True, False):
        trainer = lightning.Trainer(logger=False, enable_checkpointing=False, use_distributed_sampler=flag)
        assert trainer._accelerator_connector.use_distributed_sampler is flag
    assert isinstance(trainer._logger_connector.should_update_logs, bool)


def test_local_file_protocol_helper():
    from lightning.fabric.utilities.cloud_io import _is_local_file_protocol

    assert _is_local_file_protocol("/tmp/x.ckpt") and not _is_local_file_protocol("s3://bucket/x.ckpt")


def test_child_process_observer_the_signal_handler_disarms():
    from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver

    assert "self._child_processes" in inspect.getsource(_ChildProcessObserver.__init__)
