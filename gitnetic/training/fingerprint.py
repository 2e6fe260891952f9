"""Which run a checkpoint belongs to, so the pipeline resumes a crashed run and never a different one.

Why: under ``dvc repro`` and Snakemake the train command line is always the same, and its checkpoint
folder survives a failed or interrupted run so that the next run can continue it. It may equally hold
checkpoints of a run with other params or data. Each checkpoint therefore stores a fingerprint of
everything that determines the training trajectory: every parsed param except those that only change
logging or where files go (:data:`TRAJECTORY_FREE`), the content of every file or folder a param names
(model config, tokenizer), the index files of every shard prefix a param names (train/valid data), and
the devices/precision params. ``--resume_from_checkpoint auto`` (the pipeline's setting) resumes only a
checkpoint with an identical fingerprint (:func:`gitnetic.training.resume.auto_resume_checkpoint`);
otherwise the stale checkpoints are removed and the run starts fresh, with one line naming what changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

__all__ = ["ONLY_WHEN_ON", "TRAJECTORY_FREE", "run_fingerprint"]

logger = logging.getLogger(__name__)

# Params that do not change what is computed, only what is logged or where it is written.
TRAJECTORY_FREE = frozenset(
    {
        "resume_from_checkpoint", "save_dir", "save_step_frequency", "num_last_checkpoints",
        "progress_bar_refresh_rate", "log_every_n_steps", "dvclive_dir", "wandb_project", "wandb_name",
        "wandb_id", "enable_progress_bar", "enable_model_summary", "default_root_dir", "include_package",
        "config", "log_throughput", "peak_tflops",
        # recomputes the same activations in the backward pass (RNG state kept): a memory lever, so a run
        # that ran out of memory can turn it on and resume its own checkpoint
        "gradient_checkpointing",
    }
)  # fmt: skip
# Params that matter only while a switch is on (name -> switch): left out while it is off, so a run that
# does not use the feature keeps the fingerprint (and checkpoint bytes) it had before the feature existed.
ONLY_WHEN_ON = {name: "lora_r" for name in ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules")}
_BIG_FILE = 64 << 20  # hash larger files by size + head + tail: a data file's identity, at no cost


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _BIG_FILE:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        else:
            h.update(str(size).encode())
            h.update(fh.read(1 << 20))
            fh.seek(size - (1 << 20))
            h.update(fh.read(1 << 20))
    return h.hexdigest()


def _content_digest(value: str) -> str | None:
    """Digest of what a string param names on disk: a file, a folder, or a shard prefix; else None.

    A weighted blend (``0.7 data/bin/train-code 0.3 data/bin/train-commits``) digests each prefix."""
    parts = value.split()
    if len(parts) > 2 and len(parts) % 2 == 0:
        digests = [_content_digest(prefix) for prefix in parts[1::2]]
        if any(d is not None for d in digests):
            return hashlib.sha256("\0".join(map(str, digests)).encode()).hexdigest()
    p = Path(value)
    try:
        if p.is_file():
            return _file_digest(p)
        if p.is_dir():
            h = hashlib.sha256()
            for f in sorted(q for q in p.rglob("*") if q.is_file()):
                h.update(str(f.relative_to(p)).encode() + b"\0" + _file_digest(f).encode())
            return h.hexdigest()
        indexes = sorted(p.parent.glob(p.name + "*.idx")) if p.name else []
        if indexes:  # an MMIDIDX prefix: the .idx files hold every document length; .bin sizes
            h = hashlib.sha256()
            for idx in indexes:
                h.update(idx.name.encode() + _file_digest(idx).encode())
                data = idx.with_suffix(".bin")
                h.update(str(data.stat().st_size if data.exists() else -1).encode())
            return h.hexdigest()
    except OSError:
        return None
    return None


def _items(params: Iterable[Any]) -> dict[str, Any]:
    """``name -> value`` of every param (dataclasses, namespaces, dicts), trajectory-free ones left out."""
    out: dict[str, Any] = {}
    for item in params:
        if is_dataclass(item) and not isinstance(item, type):
            values = {f.name: getattr(item, f.name) for f in fields(item)}
        elif isinstance(item, dict):
            values = dict(item)
        elif hasattr(item, "__dict__"):
            values = {k: v for k, v in vars(item).items() if v is not None}
        else:
            continue
        for name, value in values.items():
            if name not in TRAJECTORY_FREE and not name.startswith("_"):
                out.setdefault(name, value)
    return {k: v for k, v in out.items() if k not in ONLY_WHEN_ON or out.get(ONLY_WHEN_ON[k])}


def run_fingerprint(params: Iterable[Any]) -> dict[str, str]:
    """``{"digest": sha256, "items": {name: value or content digest}}`` for the parsed train params."""
    items: dict[str, str] = {}
    for name, value in sorted(_items(params).items()):
        text = json.dumps(value, sort_keys=True, default=str)
        items[name] = text
        if isinstance(value, str) and value:
            content = _content_digest(value)
            if content is not None:
                items[f"{name} (content)"] = content
    digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
    return {"digest": digest, "items": items}
