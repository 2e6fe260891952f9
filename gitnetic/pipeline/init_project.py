"""``init``: write a ``params.yaml`` (and a model config) sized to a corpus and a compute budget.

Why a generated file rather than documented knobs: vocabulary, model size, context, batch, steps and
warmup all depend on each other and on the corpus size, and the template's values are tuned for 6 MB of
stdlib on 2 CPU cores. The rule lives in :mod:`gitnetic.pipeline.plan`; this module scans the source
(sizes only, so even a large repository takes seconds), applies the rule, and writes every section of
the template ``params.yaml`` with the planned values filled in, so ``bash scripts/pipeline.sh`` runs it.
"""

from __future__ import annotations

import math
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gitnetic.common.dataclass_argparse import load_yaml
from gitnetic.common.errors import ConfigError
from gitnetic.common.io import atomic_open
from gitnetic.data.corpus.params import SINGLE_SOURCE_KEYS, CorpusParams
from gitnetic.data.corpus.stage import scan_source
from gitnetic.data.tokenizer.params import DEFAULT_MAX_SAMPLE_BYTES
from gitnetic.models.footprint import read_footprint
from gitnetic.pipeline.finetune import (
    DEFAULT_FINETUNE_EPOCHS,
    FinetunePlan,
    format_finetune_plan,
    plan_finetune,
)
from gitnetic.pipeline.params import InitParams
from gitnetic.pipeline.plan import DEFAULT_EPOCHS, Budget, Plan, default_cpu_flops, format_plan, plan_run

__all__ = ["InitResult", "init_project"]

# Bound the tokenizer's training sample on big corpora even where the template asks for all of it: the
# tokenizer's own default cap (measured, bench/tokenizer_scale.py).
TOKENIZER_SAMPLE_CAP = DEFAULT_MAX_SAMPLE_BYTES
BYTES_PER_SHARD = 100_000_000


@dataclass
class InitResult:
    plan: Plan | FinetunePlan
    description: str
    params: dict[str, Any]
    model_config: dict[str, Any]  # empty for a fine-tune: the model folder is the config
    written: list[str]
    summary: str = ""  # the plan as printed


def _is_git_repo(path: Path) -> bool:
    try:
        proc = subprocess.run(["git", "-C", str(path), "rev-parse", "--git-dir"], capture_output=True)
    except FileNotFoundError:
        return False
    return proc.returncode == 0


def _corpus_section(params: InitParams, template: dict[str, Any]) -> dict[str, Any]:
    """The template's corpus section with its source replaced by ``--path`` (kept as is for the stdlib).

    Your code becomes one ``sources`` entry named ``code``: include and max_file_bytes from the
    template's first source unless given; no excludes and no byte cap unless given (the template's are
    for the stdlib).
    """
    source = params.source or (
        "stdlib" if params.path is None else "git" if _is_git_repo(Path(params.path).expanduser()) else "dir"
    )
    if source != "stdlib" and not params.path:
        raise ConfigError(f"--source {source} needs --path to your code")
    overrides = {
        key: value
        for key, value in (
            ("include", params.include),
            ("exclude", params.exclude),
            ("max_bytes", params.max_bytes),
        )
        if value is not None
    }
    base = CorpusParams.from_dict(template, strict=False).sources
    if source == "stdlib":
        if not overrides:
            return dict(template)
        if len(base) != 1 or base[0].type != "stdlib":
            raise ConfigError(
                "--include/--exclude/--max_bytes without --path edit the template's one stdlib source; "
                "the template has another corpus (pass --path, or edit it by hand)"
            )
        raw = template.get("sources")
        entry = dict(raw[0]) if isinstance(raw, list) and raw and isinstance(raw[0], dict) else {}
        entry = entry or {k: v for k, v in base[0].to_dict().items() if v is not None}
    else:
        entry = {
            "name": "code",
            "type": source,
            "path": str(Path(params.path).expanduser().resolve()),
            **({"rev": params.rev} if source == "git" else {}),
            "include": list(base[0].include),
            "exclude": [],
            "max_file_bytes": base[0].max_file_bytes,
            "max_bytes": 0,
        }
    entry.update({key: list(value) if isinstance(value, list) else value for key, value in overrides.items()})
    section = {key: value for key, value in template.items() if key not in SINGLE_SOURCE_KEYS}
    section["sources"] = [entry]
    return section


def _budget(params: InitParams) -> Budget:
    if params.gpu_hours is not None:
        return Budget("gpu", params.gpu_hours * 3600.0, params.gpu_tflops * 1e12)
    flops = params.cpu_gflops * 1e9 if params.cpu_gflops else default_cpu_flops()
    return Budget("cpu", params.budget_minutes * 60.0, flops)


def _model_config(plan: Plan) -> dict[str, Any]:
    m = plan.model
    return {
        "model": {
            "name": "transformers.GPT2LMHeadModel",
            "config": "transformers.GPT2Config",
            "config_params": {
                "n_embd": m.n_embd,
                "n_layer": m.n_layer,
                "n_head": m.n_head,
                "n_inner": 4 * m.n_embd,
                "n_positions": m.context,
                "resid_pdrop": 0.0,
                "embd_pdrop": 0.0,
                "attn_pdrop": 0.0,
            },
        }
    }


def _params(
    plan: Plan, template: dict[str, Any], corpus: dict[str, Any], model_config: str
) -> dict[str, Any]:
    out = {name: dict(section or {}) for name, section in template.items()}
    out["corpus"] = corpus
    tokenizer = out.setdefault("tokenizer", {})
    tokenizer["vocab_size"] = plan.vocab_size
    if plan.corpus_bytes > TOKENIZER_SAMPLE_CAP:
        tokenizer["max_sample_bytes"] = TOKENIZER_SAMPLE_CAP
    _set_num_shards(out, plan.corpus_bytes)
    train = out.setdefault("train", {})
    train.update(config_path=model_config, **_run_schedule(plan))
    if plan.accumulate_grad_batches > 1 or "accumulate_grad_batches" in train:
        train["accumulate_grad_batches"] = plan.accumulate_grad_batches
    if plan.budget.device == "gpu":
        train.update(gpus=1, precision="bf16-mixed")
    else:
        train.update(gpus=0, precision="32-true")
    for name in ("evaluate", "export"):
        out.setdefault(name, {})["config_path"] = model_config
    if "benchmark" in out:
        out["benchmark"]["config_path"] = model_config
    out["evaluate"]["max_length"] = plan.max_length
    out["evaluate"].setdefault("batch_size", plan.batch_size)
    return out


def _run_schedule(plan: Plan | FinetunePlan) -> dict[str, Any]:
    """The train keys both kinds of plan set alike: optimiser, batch, steps, and validation, checkpoints
    and logs spread over the run (two validations and checkpoints, about twenty log lines)."""
    steps = plan.max_steps
    every = max(1, steps // 2)
    log_every = max(1, min(10, steps // 20))
    return {
        "learning_rate": plan.learning_rate,
        "warmup_steps": plan.warmup_steps,
        "batch_size": plan.batch_size,
        "max_length": plan.max_length,
        "max_steps": steps,
        "val_check_interval": every,
        "save_step_frequency": every,
        "log_every_n_steps": log_every,
        "progress_bar_refresh_rate": log_every,
    }


def _set_num_shards(out: dict[str, Any], corpus_bytes: int) -> None:
    preprocess = out.setdefault("preprocess", {})
    preprocess["num_shards"] = max(
        int(preprocess.get("num_shards", 1) or 1), min(64, math.ceil(corpus_bytes / BYTES_PER_SHARD))
    )


def _finetune_params(plan: FinetunePlan, template: dict[str, Any], corpus: dict[str, Any]) -> dict[str, Any]:
    """The template with the fine-tune filled in: the folder's tokenizer and model, the planned run.

    LoRA plans write ``lora_r``, ``lora_alpha``, ``lora_dropout`` and ``lora_target_modules`` (train's LoRA
    params); a full fine-tune writes none of them."""
    folder = str(Path(plan.footprint.folder).expanduser().resolve())
    out = {name: dict(section or {}) for name, section in template.items()}
    out["corpus"] = corpus
    out.setdefault("tokenizer", {})["init_from"] = folder  # copy the model's tokenizer, train none
    _set_num_shards(out, plan.corpus_bytes)
    train = out.setdefault("train", {})
    train.update(
        config_path=None,  # the model is the folder's
        init_from=folder,
        **_run_schedule(plan),
        gpus=1 if plan.budget.device == "gpu" else 0,
        precision=plan.precision,
        gradient_checkpointing=plan.gradient_checkpointing,
    )
    if plan.accumulate_grad_batches > 1 or "accumulate_grad_batches" in train:
        train["accumulate_grad_batches"] = plan.accumulate_grad_batches
    if plan.method == "lora":
        train.update(
            lora_r=plan.lora_r,
            lora_alpha=plan.lora_alpha,
            lora_dropout=plan.lora_dropout,
            lora_target_modules=list(plan.lora_target_modules),
        )
    for name in ("evaluate", "export", "benchmark"):
        if name in out:
            out[name]["config_path"] = folder
    out.setdefault("evaluate", {})["max_length"] = plan.max_length
    out["evaluate"]["batch_size"] = plan.batch_size
    if "benchmark" in out:  # a real model: room for whole function bodies
        out["benchmark"]["max_new_tokens"] = min(512, plan.max_length // 2)
    return out


def _total_ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    except (ValueError, OSError, AttributeError):
        return 16.0


def _header(plan: Plan, description: str) -> str:
    lines = [
        "gitnetic pipeline parameters written by `python -m gitnetic init` (see docs/sizing.md for the rule)",
        f"for {description}:",
        *format_plan(plan).splitlines(),
        "Each section is one stage's flags (`python -m gitnetic <stage> --config params.yaml:<stage>`).",
    ]
    return "".join(f"# {line}\n" for line in lines) + "\n"


def init_project(params: InitParams) -> InitResult:
    """Scan the source, plan the run, and write ``params.output`` and ``params.model_config`` (a fine-tune,
    ``--from``: ``params.output`` only, the model folder is its config)."""
    output, model_path = Path(params.output), Path(params.model_config)
    footprint = read_footprint(params.init_from, "--from") if params.init_from else None
    targets = ((output, "--output"),) if footprint else ((output, "--output"), (model_path, "--model_config"))
    if not params.dry_run and not params.force:
        for path, flag in targets:
            if path.exists():
                raise ConfigError(
                    f"{path} already exists; pass --force to overwrite it (or {flag} to write elsewhere, "
                    "--dry_run to only see the plan)"
                )
    template_path = (
        Path(params.template) if params.template else (output if output.exists() else Path("params.yaml"))
    )
    if not template_path.is_file():
        raise ConfigError(
            f"template {template_path} not found; run init from the gitnetic repository root or pass --template"
        )
    template = load_yaml(template_path, "template params file")
    if not isinstance(template, dict) or not isinstance(template.get("corpus"), dict):
        raise ConfigError(
            f"template {template_path} has no corpus section; pass --template the repository's params.yaml"
        )
    corpus = _corpus_section(params, template["corpus"])
    corpus_params = CorpusParams.from_dict(corpus, strict=False)
    scan = scan_source(corpus_params)
    if scan.files == 0:
        globs = "; ".join(f"include {s.include} and exclude {s.exclude}" for s in corpus_params.sources)
        raise ConfigError(f"no files in {scan.description} match {globs}; fix --path/--include/--exclude")
    train_fraction = 1.0 - corpus_params.splits.valid_ratio - corpus_params.splits.test_ratio
    if footprint is not None:
        return _init_finetune(params, footprint, template, corpus, scan, train_fraction)
    plan = plan_run(
        scan.bytes,
        _budget(params),
        corpus_files=scan.files,
        train_fraction=train_fraction,
        epochs=params.epochs or DEFAULT_EPOCHS,
        tokens_per_param=params.tokens_per_param,
        corpus_tokens=params.tokens,
    )
    model_config = _model_config(plan)
    full = _params(plan, template, corpus, params.model_config)
    written: list[str] = []
    if not params.dry_run:
        with atomic_open(model_path, "w", encoding="utf-8") as fh:
            fh.write(
                f"# GPT-2 {plan.model.name} sized by `python -m gitnetic init` for {scan.description}.\n"
            )
            fh.write("# vocab_size and pad/bos/eos ids are always taken from the tokenizer.\n")
            yaml.safe_dump(model_config, fh, sort_keys=False)
        with atomic_open(output, "w", encoding="utf-8") as fh:
            fh.write(_header(plan, scan.description))
            yaml.safe_dump(full, fh, sort_keys=False, default_flow_style=None, width=110)
        written = [str(output), str(model_path)]
    return InitResult(plan, scan.description, full, model_config, written, format_plan(plan))


def _init_finetune(
    params: InitParams,
    footprint: Any,
    template: dict[str, Any],
    corpus: dict[str, Any],
    scan: Any,
    train_fraction: float,
) -> InitResult:
    budget = _budget(params)
    plan = plan_finetune(
        footprint,
        budget,
        corpus_bytes=scan.bytes,
        corpus_files=scan.files,
        corpus_tokens=params.tokens,
        train_fraction=train_fraction,
        epochs=params.epochs or DEFAULT_FINETUNE_EPOCHS,
        device_memory_gb=params.gpu_memory_gb if budget.device == "gpu" else _total_ram_gb(),
        lora_r=params.lora_r,
        lora_target_modules=params.lora_target_modules,
        max_length=params.max_length,
    )
    full = _finetune_params(plan, template, corpus)
    summary = format_finetune_plan(plan)
    written: list[str] = []
    if not params.dry_run:
        output = Path(params.output)
        lines = [
            "gitnetic pipeline parameters written by `python -m gitnetic init --from` (docs/sizing.md)",
            f"for a fine-tune of {footprint.folder} on {scan.description}:",
            *summary.splitlines(),
            "Each section is one stage's flags (`python -m gitnetic <stage> --config params.yaml:<stage>`).",
        ]
        with atomic_open(output, "w", encoding="utf-8") as fh:
            fh.write("".join(f"# {line}\n" for line in lines) + "\n")
            yaml.safe_dump(full, fh, sort_keys=False, default_flow_style=None, width=110)
        written = [str(output)]
    return InitResult(plan, scan.description, full, {}, written, summary)
