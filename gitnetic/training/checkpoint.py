"""Checkpoints, in one place: their names, finding the one to use, loading it, saving it atomically.

Why one module: training writes checkpoints (:class:`~gitnetic.training.callbacks.StepCheckpoint`
through :class:`AtomicCheckpointIO`), resume finds the last one (:func:`resume_checkpoint`), and
evaluate/export find and load one (:func:`find_checkpoint`, :func:`load_trained_model`). They must
agree on file names and on what counts as a usable file, so those rules live here and nowhere else.

Files in a checkpoint folder (``train --save_dir``):

* ``checkpoint_step{N}.ckpt``: the state after ``N`` optimizer steps (:func:`step_checkpoint_name`);
* ``checkpoint_last.ckpt``: the newest of them, a hard link (:data:`CHECKPOINT_LAST`).
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path
from typing import Any

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.common.io import atomic_open

__all__ = [
    "CHECKPOINT_EXTENSION",
    "CHECKPOINT_LAST",
    "LAST_CHECKPOINT_NAME",
    "STEP_CHECKPOINT_TEMPLATE",
    "AtomicCheckpointIO",  # noqa: F822 - defined on first access (module __getattr__)
    "find_checkpoint",
    "is_valid_checkpoint",
    "last_checkpoint_path",
    "load_checkpoint",
    "load_trained_model",
    "load_weights",
    "resume_checkpoint",
    "step_checkpoint_name",
]

CHECKPOINT_EXTENSION = ".ckpt"
LAST_CHECKPOINT_NAME = "checkpoint_last"  # stem (Lightning's ModelCheckpoint.CHECKPOINT_NAME_LAST)
CHECKPOINT_LAST = LAST_CHECKPOINT_NAME + CHECKPOINT_EXTENSION
STEP_CHECKPOINT_TEMPLATE = "checkpoint_step{step}"  # stem, a ModelCheckpoint ``filename`` template

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- naming
def step_checkpoint_name(step: int) -> str:
    """The file name of the checkpoint taken after ``step`` optimizer steps."""
    return STEP_CHECKPOINT_TEMPLATE.format(step=step) + CHECKPOINT_EXTENSION


def last_checkpoint_path(save_dir: str | Path) -> Path:
    """``SAVE_DIR/checkpoint_last.ckpt``: where the newest checkpoint of a run is (or will be)."""
    return Path(save_dir) / CHECKPOINT_LAST


# ---------------------------------------------------------------------------------------------- finding
def is_valid_checkpoint(path: str | Path) -> bool:
    """Cheap structural check: a complete ``torch.save`` file is a zip archive with its central directory
    at the end, so a file cut short by a crash fails it without being unpickled."""
    return Path(path).is_file() and zipfile.is_zipfile(path)


def find_checkpoint(path: str | Path) -> str:
    """The checkpoint file ``path`` names: a ``.ckpt`` file, or a checkpoint folder.

    In a folder, ``checkpoint_last.ckpt`` wins; without it, the newest ``*.ckpt`` (by modification time)
    that passes :func:`is_valid_checkpoint`, else simply the newest (loading then reports what is wrong).
    """
    p = Path(path)
    if p.is_dir():
        last = p / CHECKPOINT_LAST
        if last.is_file():
            return str(last)
        found = sorted(p.glob("*" + CHECKPOINT_EXTENSION), key=lambda f: f.stat().st_mtime)
        if not found:
            raise DataError(f"no *.ckpt in {p}; pass a checkpoint file written by 'python -m gitnetic train'")
        valid = [f for f in found if is_valid_checkpoint(f)]
        return str((valid or found)[-1])
    if not p.is_file():
        raise DataError(f"checkpoint {p} does not exist; pass a .ckpt written by 'python -m gitnetic train'")
    return str(p)


def resume_checkpoint(spec: str | None, save_dir: str | None) -> str | None:
    """The checkpoint ``train --resume_from_checkpoint SPEC`` resumes from, or ``None`` for a fresh start.

    ``SPEC`` is a file, or ``last`` (``SAVE_DIR/checkpoint_last.ckpt`` when it exists: a first run and
    its restarts can share one command line). A missing explicit file is a ``ConfigError``; a truncated
    one a ``DataError``.
    """
    if not spec:
        return None
    if spec == "last":
        if not save_dir:
            raise ConfigError(
                f"--resume_from_checkpoint last needs --save_dir (where {CHECKPOINT_LAST} lives)"
            )
        path = last_checkpoint_path(save_dir)
        if not path.is_file():
            logger.info("no %s yet: starting a fresh run", path)
            return None
    else:
        path = Path(spec)
        if not path.is_file():
            raise ConfigError(f"checkpoint {path} does not exist; pass an existing .ckpt file or 'last'")
    if not is_valid_checkpoint(path):
        raise DataError(f"checkpoint {path} is truncated or not a PyTorch checkpoint; pick an older one")
    return str(path)


# ---------------------------------------------------------------------------------------------- loading
def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict (``state_dict``, ``global_step``...) of the file or folder ``path``.

    ``_path`` is added: the file actually read. Corrupt files are a one-line ``DataError``.
    """
    import torch

    path = find_checkpoint(path)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # Lightning stores hyper-parameters as plain Python objects; the file is our own training output.
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch.load of a damaged file raises anything (KeyError, EOFError...)
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(
            f"checkpoint {path} is corrupt or not a torch checkpoint ({msg}); re-run training"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("state_dict", ckpt), dict):
        raise DataError(
            f"checkpoint {path} has no state_dict; pass a Lightning .ckpt written by 'python -m gitnetic train'"
        )
    ckpt.setdefault("_path", path)
    return ckpt


def load_weights(model: Any, ckpt: dict[str, Any], source: str = "checkpoint") -> None:
    """Load a Lightning ``state_dict`` into the bare HF model, whatever attribute prefix the module used."""
    state = ckpt.get("state_dict", ckpt)
    expected = set(model.state_dict())
    candidates = [""] + sorted({k.split(".", 1)[0] + "." for k in state if "." in k})
    best: dict[str, Any] = {}
    for prefix in candidates:
        sub = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if len(set(sub) & expected) > len(set(best) & expected):
            best = sub
    missing = expected - set(best)
    # Tied weights (lm_head = embeddings) may be stored once only; load_state_dict re-ties them.
    tied = {k for k in missing if "lm_head" in k or "decoder" in k or k.endswith("position_ids")}
    if not best or missing - tied:
        example = ", ".join(sorted(missing - tied)[:3])
        raise DataError(
            f"{source} does not match the model built from the config (missing {example or 'all weights'}); "
            "pass the --config_path and --tokenizer_path used for training"
        )
    try:
        model.load_state_dict({k: v for k, v in best.items() if k in expected}, strict=False)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise DataError(
            f"{source} does not fit the model built from the config ({first[-1].strip() if first else exc}); "
            "pass the --config_path and --tokenizer_path used for training"
        ) from None
    if hasattr(model, "tie_weights"):
        model.tie_weights()


def load_trained_model(
    checkpoint: str, config_path: str, tokenizer_path: str
) -> tuple[Any, Any, Any, dict[str, Any]]:
    """``(model in eval mode, tokenizer, model config, checkpoint dict)`` for evaluate/export.

    The model is built from the config exactly as training built it, then the checkpoint's weights go in.
    """
    from gitnetic.tasks.model_config import build_model_and_tokenizer

    model, tokenizer, model_config = build_model_and_tokenizer(config_path, tokenizer_path)
    ckpt = load_checkpoint(checkpoint)
    load_weights(model, ckpt, source=f"checkpoint {ckpt['_path']}")
    model.eval()
    return model, tokenizer, model_config, ckpt


# ---------------------------------------------------------------------------------------------- saving
def _atomic_checkpoint_io() -> type:
    """Define :class:`AtomicCheckpointIO` on first use: importing this module stays free of torch and
    Lightning, so light callers (the Snakefile reading checkpoint names) start fast."""
    import torch
    from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    class AtomicCheckpointIO(TorchCheckpointIO):
        """``TorchCheckpointIO`` whose local saves go to a temp sibling, are fsynced, then ``os.replace``\\ d.

        Why: Lightning's local ``_atomic_save`` stages the file in the system temp dir and
        ``shutil.move``\\ s it, which degrades to a non-atomic copy when ``/tmp`` is another filesystem;
        a run killed then leaves a truncated checkpoint under the final name.
        """

        def save_checkpoint(
            self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
        ) -> None:
            if storage_options is not None or not _is_local_file_protocol(path):
                super().save_checkpoint(checkpoint, path, storage_options)
                return
            with atomic_open(Path(path), "wb") as fh:
                torch.save(checkpoint, fh)

    AtomicCheckpointIO.__module__ = __name__
    AtomicCheckpointIO.__qualname__ = "AtomicCheckpointIO"
    return AtomicCheckpointIO


def __getattr__(name: str) -> Any:
    if name == "AtomicCheckpointIO":
        cls = _atomic_checkpoint_io()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
