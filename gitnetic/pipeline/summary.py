"""The few lines a pipeline run ends with: how good the model is, where everything is, what to do next.

Replaces ``dvc metrics show`` at the end of ``scripts/pipeline.sh``, whose table has a column for every
corpus statistic (40 of them) and fits no terminal. Everything is read from the files the stages wrote,
found through ``params.yaml`` (so changed output paths are followed); a stage that has not run yet is
simply left out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitnetic.common.dataclass_argparse import load_yaml
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.models.checkpoint import DEFAULT_SAVE_DIR, find_checkpoint
from gitnetic.pipeline.params import SummaryParams

__all__ = ["pipeline_summary"]

COMPARE = (
    "dvc exp run -S train.learning_rate=0.001 && dvc exp show --drop '.*' "
    "--keep 'Experiment|perplexity|unigram_perplexity|bits_per_byte|train\\.(learning_rate|max_steps)'"
)
# The page needs no network (.dvc/config: plots.html_template, Vega inlined): open it anywhere.
CURVES = "dvc plots show (or dvc plots diff EXP EXP)  -> dvc_plots/index.html: loss, val loss, tokens/s; works offline"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _section(params: dict[str, Any], name: str) -> dict[str, Any]:
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def _newest_checkpoint(root: Path, save_dir: str | None) -> Path | None:
    """The newest checkpoint of the train stage's folder (relative to ``root``), None without one.
    ``save_dir`` None is the trainer's default folder; ``''`` means the run saved no checkpoints."""
    if save_dir == "":
        return None
    try:
        return Path(find_checkpoint(root / (save_dir or DEFAULT_SAVE_DIR))).relative_to(root)
    except DataError:
        return None


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


class _Paths:
    """The output paths the params file's sections name, each checked to be one path."""

    def __init__(self, params_path: Path, config: dict[str, Any]) -> None:
        self.params_path, self.config = params_path, config

    def get(self, section: str, key: str, default: str | None) -> Any:
        value = _section(self.config, section).get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str):
            raise ConfigError(
                f"params file {self.params_path}: {section}.{key} must be a path, got {_a(value)} "
                f"({value!r}); write one path"
            )
        return value


def pipeline_summary(params: SummaryParams) -> list[str]:
    """The summary lines (paths relative to the params file's folder, as the stages wrote them)."""
    params_path = Path(params.params_file)
    root = params_path.parent
    config = load_yaml(params_path, "params file")
    config = {} if config is None else config
    if not isinstance(config, dict):
        raise ConfigError(
            f"params file {params_path} must be a mapping of sections (train:, evaluate:, ...), got "
            f"{_a(config)}; fix its top level (python -m gitnetic init writes one)"
        )
    paths = _Paths(params_path, config)
    eval_path = paths.get("evaluate", "output", "metrics/eval.json")
    live_dir = paths.get("train", "dvclive_dir", "dvclive")
    live = _read_json(root / live_dir / "metrics.json")
    rows = _metric_rows(_read_json(root / eval_path), eval_path)
    bench_path = paths.get("benchmark", "metrics", "metrics/benchmark.json")
    rows += _benchmark_row(_read_json(root / bench_path), bench_path)
    if live:
        rows.append(("training", _training_row(live) + f"  -> {live_dir}/"))
    hf = paths.get("export", "output_dir", "models/hf")
    model = []
    ckpt = _newest_checkpoint(root, paths.get("train", "save_dir", None))
    if ckpt is not None:
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


def _metric_rows(metrics: dict[str, Any] | None, eval_path: str) -> list[tuple[str, str]]:
    """Held-out perplexity against the unigram baseline and bits per byte, the base model's numbers
    beside them for a fine-tune, and the code-completion scores."""
    rows: list[tuple[str, str]] = []
    if metrics and "perplexity" in metrics:
        text = f"{metrics['perplexity']:,.1f}"
        base = metrics.get("unigram_perplexity")
        if base:
            ratio = base / metrics["perplexity"]
            verdict = f"{ratio:.1f}x lower" if ratio >= 1 else "not below it yet: train longer"
            text += f" (unigram baseline {base:,.1f}: {verdict})"
        if metrics.get("bits_per_byte") is not None:
            text += f", {metrics['bits_per_byte']:.3f} bits per byte"
        text += f" on {metrics.get('tokens', 0):,} test tokens  -> {eval_path}"
        rows.append(("held-out perplexity", text))
    if metrics and isinstance(metrics.get("base"), dict) and metrics["base"].get("perplexity") is not None:
        rows.append(("base → tuned", _before_after(metrics["base"], metrics)))
    if metrics and metrics.get("next_line_samples"):
        parts = []
        for kind, name in (("next_line", "next-line"), ("infill", "infilling")):
            if f"{kind}_exact_match" in metrics:
                parts.append(
                    f"{name} exact match {metrics[f'{kind}_exact_match']:.1%} "
                    f"(edit similarity {metrics.get(f'{kind}_edit_similarity', 0):.0%})"
                )
        rows.append(("code completion", ", ".join(parts) + f" of {metrics['next_line_samples']} test lines"))
    return rows


def _before_after(base: dict[str, Any], tuned: dict[str, Any]) -> str:
    """The fine-tune's gain on the same held-out tokens: the base model's numbers, then the tuned one's."""
    parts = [f"perplexity {base['perplexity']:,.1f} → {tuned['perplexity']:,.1f}"]
    if base.get("bits_per_byte") is not None and tuned.get("bits_per_byte") is not None:
        parts.append(f"bits per byte {base['bits_per_byte']:.3f} → {tuned['bits_per_byte']:.3f}")
    parts.append(f"loss {base['loss']:.3f} → {tuned['loss']:.3f}")
    return ", ".join(parts) + f" (base: {base.get('model', '?')})"


def _benchmark_row(bench: dict[str, Any] | None, bench_path: str) -> list[tuple[str, str]]:
    """The functional score (pass@k, infilling pass@1 per set) of ``metrics/benchmark.json``, if scored."""
    if not bench or not bench.get("samples"):
        return []
    scores = ", ".join(f"{k} {v:.1%}" for k, v in bench.items() if k.startswith("pass@"))
    text = f"{scores} over {bench['scored_problems']} problems x {bench.get('n_samples', 1)} samples"
    infill = [f"{name} {v['pass@1']:.1%}" for name, v in (bench.get("infill") or {}).items() if "pass@1" in v]
    if infill:
        text += f"; infilling pass@1 {', '.join(infill)}"
    return [(f"{bench.get('problems', 'benchmark')} (code run)", f"{text}  -> {bench_path}")]


def _training_row(live: dict[str, Any]) -> str:
    """Steps, tokens, throughput and the last losses (validation's bits per byte beside its loss) from
    DVCLive's ``metrics.json``."""
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
        if "bits_per_byte" in val:
            losses[-1] += f" ({val['bits_per_byte']:.3f} bits per byte)"
    if losses:
        parts.append(", ".join(losses))
    return "; ".join(parts)
