"""The checkpoint folder as its readers see it: its file names, which checkpoint is the newest, finding
one, and reading a trained model back.

Why one module: training writes checkpoints and picks one to resume from (:mod:`gitnetic.training.resume`,
their one writer), and evaluate, export, generate and the pipeline summary find and load one
(:func:`find_checkpoint`, :func:`load_trained_model`). They must agree on file names, on what counts as a
usable file and on which file is the newest, so those rules live here and nowhere else. It sits in the
``models`` layer (below training and inference) so that every reader can use it; importing it loads
neither torch nor Lightning (the Snakefile reads the names).

Files in a checkpoint folder (``train --save_dir``):

* ``checkpoint_step{N}.ckpt``: the state after ``N`` optimizer steps (:func:`step_checkpoint_name`);
* ``checkpoint_last.ckpt``: the newest of them, a hard link (:data:`CHECKPOINT_LAST`).
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gitnetic.common.errors import DataError
from gitnetic.models.build import build_model_and_tokenizer
from gitnetic.models.config import ModelConfig
from gitnetic.models.finite import check_finite_weights
from gitnetic.models.lora import load_adapted_model, lora_record
from gitnetic.models.params import DEFAULT_SAVE_DIR

__all__ = [
    "CHECKPOINT_EXTENSION",
    "CHECKPOINT_LAST",
    "DEFAULT_SAVE_DIR",
    "LAST_CHECKPOINT_NAME",
    "STEP_CHECKPOINT_TEMPLATE",
    "TrainedModel",
    "checkpoint_step",
    "checkpoints_newest_first",
    "find_checkpoint",
    "is_valid_checkpoint",
    "last_checkpoint_path",
    "load_checkpoint",
    "load_trained_model",
    "load_weights",
    "same_file",
    "step_checkpoint_name",
]

CHECKPOINT_EXTENSION = ".ckpt"
LAST_CHECKPOINT_NAME = "checkpoint_last"  # stem (Lightning's ModelCheckpoint.CHECKPOINT_NAME_LAST)
CHECKPOINT_LAST = LAST_CHECKPOINT_NAME + CHECKPOINT_EXTENSION
STEP_CHECKPOINT_TEMPLATE = "checkpoint_step{step}"  # stem, a ModelCheckpoint ``filename`` template
_STEP = re.compile(r"^checkpoint_step(\d+)\.ckpt$")


# ---------------------------------------------------------------------------------------------- naming
def step_checkpoint_name(step: int) -> str:
    """The file name of the checkpoint taken after ``step`` optimizer steps."""
    return STEP_CHECKPOINT_TEMPLATE.format(step=step) + CHECKPOINT_EXTENSION


def checkpoint_step(path: str | Path) -> int | None:
    """The step of a step checkpoint's file name (``checkpoint_step40.ckpt`` -> 40); None for any other."""
    match = _STEP.match(Path(path).name)
    return int(match.group(1)) if match else None


def last_checkpoint_path(save_dir: str | Path) -> Path:
    """``SAVE_DIR/checkpoint_last.ckpt``: where the newest checkpoint of a run is (or will be)."""
    return Path(save_dir) / CHECKPOINT_LAST


# ---------------------------------------------------------------------------------------------- finding
def is_valid_checkpoint(path: str | Path) -> bool:
    """Cheap structural check: a complete ``torch.save`` file is a zip archive with its central directory
    at the end, so a file cut short by a crash fails it without being unpickled."""
    return Path(path).is_file() and zipfile.is_zipfile(path)


def checkpoints_newest_first(folder: str | Path, others: bool = True) -> list[Path]:
    """The ``*.ckpt`` files in ``folder``, newest first: the one rule for "the newest checkpoint".

    Step checkpoints go by their step number, ``checkpoint_last.ckpt`` right before the step file it
    links to, so a step file newer than the link (a run killed between writing ``checkpoint_stepN.ckpt``
    and moving the link) comes first. A link that is a copy (DVC "unprotects" a persisted output before
    its stage runs: every hard-linked file becomes a copy of its own) goes before the step file with the
    same content; one with no such step file (its own was pruned, or it was put there by hand) before
    the newest step file it is not older than, by modification time. With ``others``, ``*.ckpt`` files
    training did not name follow, by modification time (auto-resume leaves them out: it may delete what
    it considers).
    """
    p = Path(folder)
    if not p.is_dir():
        return []
    steps, foreign = [], []
    for f in p.glob("*" + CHECKPOINT_EXTENSION):
        match = _STEP.match(f.name)
        if match:
            steps.append((int(match.group(1)), f))
        elif f.name != CHECKPOINT_LAST:
            foreign.append(f)
    ordered = [f for _, f in sorted(steps, key=lambda item: item[0], reverse=True)]
    last = p / CHECKPOINT_LAST
    if last.is_file():
        linked = next((i for i, f in enumerate(ordered) if same_file(f, last)), None)
        if linked is None:
            content = _zip_directory(last)
            linked = next(
                (
                    i
                    for i, f in enumerate(ordered)
                    if content is not None and f.stat().st_size == content[0] and _zip_directory(f) == content
                ),
                None,
            )
        if linked is None:
            mtime = last.stat().st_mtime
            linked = next((i for i, f in enumerate(ordered) if f.stat().st_mtime <= mtime), len(ordered))
        ordered.insert(linked, last)
    if not others:
        return ordered
    return ordered + sorted(foreign, key=lambda f: f.stat().st_mtime, reverse=True)


def _zip_directory(path: Path) -> tuple[int, list[tuple[str, int, int]]] | None:
    """A checkpoint's size and zip directory (each member's name, CRC-32 and size; no data is read):
    equal for two files that hold the same data. None for anything unreadable."""
    try:
        with zipfile.ZipFile(path) as z:
            return path.stat().st_size, [(i.filename, i.CRC, i.file_size) for i in z.infolist()]
    except (OSError, zipfile.BadZipFile):
        return None


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether ``a`` and ``b`` are one file (hard links included); False when either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def find_checkpoint(path: str | Path) -> str:
    """The checkpoint file ``path`` names: a ``.ckpt`` file, or a checkpoint folder.

    In a folder: the newest (:func:`checkpoints_newest_first`) that passes :func:`is_valid_checkpoint`,
    else simply the newest (loading then reports what is wrong).
    """
    p = Path(path)
    if p.is_dir():
        found = checkpoints_newest_first(p)
        if not found:
            raise DataError(f"no *.ckpt in {p}; pass a checkpoint file written by 'python -m gitnetic train'")
        return str(next((f for f in found if is_valid_checkpoint(f)), found[0]))
    if not p.is_file():
        raise DataError(f"checkpoint {p} does not exist; pass a .ckpt written by 'python -m gitnetic train'")
    return str(p)


# ---------------------------------------------------------------------------------------------- loading
def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The checkpoint dict (``state_dict``, ``global_step``...) of the file or folder ``path``.

    ``_path`` is added: the file actually read. Corrupt files are a one-line ``DataError``.
    """
    import torch  # here: the Snakefile imports this module for the names alone

    path = find_checkpoint(path)
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError:
            # Lightning stores hyper-parameters as plain Python objects; the file is our own training output.
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - torch.load of a damaged file raises anything (KeyError, EOFError...)
        with open(path, "rb") as fh:  # torch.save writes a zip (PK), its legacy format a pickle (0x80)
            if fh.read(1) not in (b"", b"P", b"\x80"):  # else torch.load's message is noise like "(101)"
                raise DataError(
                    f"checkpoint {path} is not a torch checkpoint (neither a zip archive nor a pickle); "
                    "pass a .ckpt written by 'python -m gitnetic train'"
                ) from None
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


@dataclass
class TrainedModel:
    """A trained model read back from its checkpoint: what evaluate, export and generate work with."""

    model: Any  # the HF model, in eval mode, on the CPU
    tokenizer: Any
    config: ModelConfig  # the model config it was built from
    checkpoint: dict[str, Any]  # the checkpoint dict (``global_step``...; ``_path``: the file read)

    @property
    def path(self) -> str:
        """The checkpoint file actually read (a folder resolves to its newest checkpoint)."""
        return str(self.checkpoint["_path"])

    @property
    def global_step(self) -> int:
        return int(self.checkpoint.get("global_step", 0) or 0)


def load_trained_model(
    checkpoint: str | Path, config_path: str, tokenizer_path: str, merge: bool = True
) -> TrainedModel:
    """The model of ``checkpoint`` (a file or a checkpoint folder), built from the config exactly as
    training built it, with the checkpoint's weights, in eval mode. Weights of a diverged run (NaN, inf)
    are a one-line :class:`~gitnetic.models.finite.NonFiniteWeightsError`.

    A LoRA run's checkpoint holds only adapters: its base model comes from ``config_path`` when that is a
    model folder, else from the folder the run recorded (:func:`gitnetic.models.lora.load_adapted_model`),
    and the adapters are merged into it (``merge``; else the peft model is returned, for exporting the
    adapter alone)."""
    ckpt = load_checkpoint(checkpoint)
    source = f"checkpoint {ckpt['_path']}"
    record = lora_record(ckpt)
    if record is not None:
        built = load_adapted_model(record, ckpt.get("state_dict", {}), config_path, tokenizer_path, source)
        check_finite_weights(built.model.state_dict(), source)
        model = built.model.merge_and_unload() if merge else built.model
        model.eval()
        return TrainedModel(model, built.tokenizer, built.config, ckpt)
    built = build_model_and_tokenizer(config_path, tokenizer_path)
    load_weights(built.model, ckpt, source=source)
    check_finite_weights(built.model.state_dict(), source)
    built.model.eval()
    return TrainedModel(built.model, built.tokenizer, built.config, ckpt)
