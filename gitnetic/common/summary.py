"""The few lines a pipeline run ends with: how good the model is, where everything is, what to do next.

Replaces ``dvc metrics show`` at the end of ``scripts/pipeline.sh``, whose table has a column for every
corpus statistic (40 of them) and fits no terminal. Everything is read from the files the stages wrote,
found through ``params.yaml`` (so changed output paths are followed); a stage that has not run yet is
simply left out.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitnetic.common.dataclass_argparse import DataclassBase, load_yaml

__all__ = ["SummaryParams", "pipeline_summary"]

COMPARE = (
    "dvc exp run -S train.learning_rate=0.001 && dvc exp show --drop '.*' "
    "--keep 'Experiment|perplexity|unigram_perplexity|train\\.(learning_rate|max_steps)'"
)
# The page needs no network (.dvc/config: plots.html_template, Vega inlined): open it anywhere.
CURVES = "dvc plots show (or dvc plots diff EXP EXP)  -> dvc_plots/index.html: loss, val loss, tokens/s; works offline"


@dataclass
class SummaryParams(DataclassBase):
    """Summary: which params file locates the pipeline's outputs."""

    params_file: str = field(
        default="params.yaml",
        metadata={"help": "The pipeline's params file (its train/evaluate/export sections give the paths)."},
    )


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def pipeline_summary(params: SummaryParams) -> list[str]:
    """The summary lines (paths relative to the params file's folder, as the stages wrote them)."""
    params_path = Path(params.params_file)
    root = params_path.parent
    config = load_yaml(params_path, "params file") or {}
    train, evaluate, export = (_section(config, s) for s in ("train", "evaluate", "export"))
    rows: list[tuple[str, str]] = []

    eval_path = evaluate.get("output") or "metrics/eval.json"
    metrics = _read_json(root / eval_path)
    if metrics and "perplexity" in metrics:
        text = f"{metrics['perplexity']:,.1f}"
        base = metrics.get("unigram_perplexity")
        if base:
            ratio = base / metrics["perplexity"]
            verdict = f"{ratio:.1f}x lower" if ratio >= 1 else "not below it yet: train longer"
            text += f" (unigram baseline {base:,.1f}: {verdict})"
        text += f" on {metrics.get('tokens', 0):,} test tokens  -> {eval_path}"
        rows.append(("held-out perplexity", text))
    if metrics and metrics.get("next_line_samples"):
        parts = []
        for kind, name in (("next_line", "next-line"), ("infill", "infilling")):
            if f"{kind}_exact_match" in metrics:
                parts.append(
                    f"{name} exact match {metrics[f'{kind}_exact_match']:.1%} "
                    f"(edit similarity {metrics.get(f'{kind}_edit_similarity', 0):.0%})"
                )
        rows.append(("code completion", ", ".join(parts) + f" of {metrics['next_line_samples']} test lines"))

    live_dir = train.get("dvclive_dir") or "dvclive"
    live = _read_json(root / live_dir / "metrics.json")
    if live:
        t, perf, val = live.get("train", {}), live.get("perf", {}), live.get("val", {})
        parts = [f"{live.get('step', '?')} steps"]
        if "tokens" in t:
            parts[0] += f", {int(t['tokens']):,} tokens"
        if "tokens_per_sec" in perf:
            parts.append(f"{perf['tokens_per_sec']:,.0f} tokens/s")
        if "mfu" in perf:
            parts.append(f"MFU {100 * perf['mfu']:.1f}%")
        losses = [f"train loss {t['loss']:.3f}"] if "loss" in t else []
        if "loss" in val:
            losses.append(f"val loss {val['loss']:.3f}")
        if losses:
            parts.append(", ".join(losses))
        rows.append(("training", "; ".join(parts) + f"  -> {live_dir}/"))

    ckpt = Path(train.get("save_dir") or "models/checkpoints") / "checkpoint_last.ckpt"
    hf = export.get("output_dir") or "models/hf"
    model = []
    if (root / ckpt).is_file():
        model.append(f"checkpoint {ckpt}")
    if (root / hf / "config.json").is_file():
        model.append(f"Hugging Face folder {hf} (from_pretrained-ready)")
    if model:
        rows.append(("model", ", ".join(model)))
    if live:
        rows.append(("curves", CURVES))
        rows.append(("compare experiments", COMPARE))
    if not rows:
        return ["nothing to summarise yet: run the pipeline (bash scripts/pipeline.sh)"]
    width = max(len(label) for label, _ in rows)
    return [f"  {label:<{width}}  {text}" for label, text in rows]
