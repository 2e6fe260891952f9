"""Experiment loggers: DVCLive for the DVC pipeline, Weights & Biases on request, never blocking.

DVCLive writes ``{dir}/metrics.json`` (latest values) and ``{dir}/plots/metrics/<name>.tsv`` (history),
which the pipeline's ``dvc.yaml`` declares as metrics and plots. W&B runs offline unless the user has an
API key configured (or chose a ``WANDB_MODE``), so a missing login never stalls a training job.
"""

from __future__ import annotations

import logging
import netrc
import os
from typing import Any

from dvclive.lightning import DVCLiveLogger

from gitnetic.common.errors import ConfigError

__all__ = ["StepDVCLiveLogger", "build_loggers", "wandb_logged_in"]

logger = logging.getLogger(__name__)


class StepDVCLiveLogger(DVCLiveLogger):
    """DVCLive with the x axis in optimizer steps completed (1, 2, ...).

    Lightning logs a step's metrics under the 0-based index of that step, and DVCLive reads a step of
    0 as "no step given" and auto-increments, so the first two rows would both be step 1. Shifting by
    one makes every row unique and makes the last row's step equal ``trainer.global_step``.
    """

    def log_metrics(self, metrics: Any, step: int | None = None, sync: bool | None = False) -> None:
        super().log_metrics(metrics, None if step is None else step + 1, sync)

    @property
    def experiment(self) -> Any:
        # DVCLive reads the git HEAD of the surrounding DVC repo; a repo with no commit yet makes it raise
        # a bare "Empty git repo" from deep inside scmrepo. Say what to do instead.
        from scmrepo.exceptions import SCMError  # here: scmrepo comes with DVCLive, only used on this path

        try:
            return super().experiment
        except SCMError as exc:
            raise ConfigError(
                f"DVCLive cannot read this git repository ({exc}): make a first commit (git add -A && "
                "git commit) or pass --dvclive_dir '' to train without DVCLive"
            ) from None


def wandb_logged_in() -> bool:
    """True if a W&B API key is configured (environment or ~/.netrc); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return netrc.netrc().authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def build_loggers(
    *,
    dvclive_dir: str | None,
    wandb_project: str | None = None,
    wandb_name: str | None = None,
    wandb_id: str | None = None,
    resuming: bool = False,
) -> list[Any]:
    """The loggers a run asked for (possibly none)."""
    loggers: list[Any] = []
    if dvclive_dir:
        # dvcyaml=False: the pipeline's dvc.yaml declares dvclive/ metrics and plots itself; DVCLive must
        # not rewrite a tracked file in the middle of `dvc repro`. resume=True continues the history.
        loggers.append(
            StepDVCLiveLogger(
                dir=dvclive_dir, save_dvc_exp=False, dvcyaml=False, resume=resuming, report=None
            )
        )
    if wandb_project:
        from lightning.pytorch.loggers import WandbLogger  # here: it needs the optional wandb package

        kwargs: dict[str, Any] = {"project": wandb_project, "name": wandb_name, "resume": "allow"}
        if wandb_id:
            kwargs["id"] = wandb_id
        if not os.environ.get("WANDB_MODE") and not wandb_logged_in():
            logger.info("wandb: no API key configured, logging offline (upload later with 'wandb sync')")
            kwargs["offline"] = True
        loggers.append(WandbLogger(**kwargs))
    return loggers
