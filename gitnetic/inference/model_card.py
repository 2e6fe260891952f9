"""The model card (``README.md``) that export writes into the Hugging Face folder.

Hugging Face reads the YAML front matter (https://huggingface.co/docs/hub/model-cards): ``library_name``,
``tags``, ``pipeline_tag``, ``license`` and ``model-index`` (results that the Hub shows and leaderboards
read: HumanEval pass@k from the benchmark stage, held-out perplexity and bits per byte from evaluate). The
``license`` is one of the Hub's ids, or ``other`` with a ``license_name`` when the corpus is under several
licenses (:mod:`gitnetic.inference.hub_license`); a fine-tune's card gives the base model's numbers beside
its own. The body says what the model was trained on (the corpus sources and their licenses, statistics,
decontamination), how (the training params stored in the checkpoint) and how well; every number comes
from a file a stage wrote, and what is missing is left out rather than guessed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from gitnetic.inference.hub_license import hub_license

__all__ = ["model_card", "read_json"]


def read_json(path: str | None) -> dict[str, Any] | None:
    """A stage's JSON output, or None when it is absent or unreadable (the card then leaves it out)."""
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _license(licenses: dict[str, Any] | None) -> tuple[dict[str, str], str]:
    """The card's ``license`` metadata as the Hub accepts it (:mod:`gitnetic.inference.hub_license`:
    one Hub id, or ``other`` with a ``license_name``; nothing without the mapping) and the body's lines."""
    if not licenses:
        return {}, ""
    ids = [i for spdx in licenses.values() if spdx for i in str(spdx).split(" AND ")]
    unknown = any(not spdx for spdx in licenses.values())
    license_id, name = hub_license(ids, unknown)
    lines = ", ".join(f"{source}: {spdx or 'unknown'}" for source, spdx in licenses.items())
    if name is None:
        return {"license": license_id}, f"Corpus licenses: {lines}."
    listed = ", ".join(sorted(set(ids), key=str.lower)) + (" and code of unknown license" if unknown else "")
    return {"license": "other", "license_name": name}, (
        f"Corpus licenses: {lines}. The model was trained on text under {listed}; no one license id of the "
        f"Hub's covers that (`license: other`, `license_name: {name}`): check each before redistributing."
    )


def _model_index(name: str, evaluation: dict[str, Any] | None, bench: dict[str, Any] | None) -> list[dict]:
    results = []
    if bench:
        metrics = [
            {"type": key, "name": key, "value": round(float(value), 4), "verified": False}
            for key, value in bench.items()
            if key.startswith("pass@")
        ]
        for set_name, infill in (bench.get("infill") or {}).items():
            metrics += [
                {"type": key, "name": f"HumanEval {set_name} infilling {key}", "verified": False,
                 "value": round(float(value), 4)}
                for key, value in infill.items()
                if key.startswith("pass@")
            ]  # fmt: skip
        problems = str(bench.get("problems", "humaneval"))
        dataset = {"type": "openai_humaneval", "name": "HumanEval"} if problems == "humaneval" else {
            "type": Path(problems).stem, "name": Path(problems).name}  # fmt: skip
        results.append({"task": {"type": "text-generation", "name": "Code generation"}, "dataset": dataset,
                        "metrics": metrics})  # fmt: skip
    if evaluation and "perplexity" in evaluation:
        metrics = [
            {"type": "perplexity", "name": "perplexity", "value": round(float(evaluation["perplexity"]), 4)}
        ]
        if evaluation.get("bits_per_byte") is not None:
            metrics.append({"type": "bits_per_byte", "name": "bits per byte",
                            "value": round(float(evaluation["bits_per_byte"]), 4)})  # fmt: skip
        for key in ("next_line_exact_match", "infill_exact_match"):
            if key in evaluation:
                metrics.append(
                    {
                        "type": "exact_match",
                        "name": key.replace("_", " "),
                        "value": round(float(evaluation[key]), 4),
                    }
                )
        results.append({"task": {"type": "text-generation", "name": "Held-out code modelling"},
                        "dataset": {"type": "gitnetic-corpus", "name": "held-out test split"}, "metrics": metrics})  # fmt: skip
    return [{"name": name, "results": results}] if results else []


def _table(rows: list[tuple[str, Any]]) -> list[str]:
    return ["| what | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)]


def _corpus_lines(stats: dict[str, Any] | None) -> list[str]:
    if not stats:
        return ["Corpus statistics were not found (export's --corpus_stats)."]
    docs, size = stats.get("documents", {}), stats.get("bytes", {})
    rows = [("sources", ", ".join(stats.get("sources", {})) or stats.get("source", "?"))]
    rows += [
        (f"{split} documents / bytes", f"{docs.get(split, 0):,} / {size.get(split, 0):,}")
        for split in ("train", "valid", "test")
    ]
    for bench, n in (stats.get("decontaminated") or {}).items():
        rows.append((f"dropped as {bench} contamination", f"{n:,} documents"))
    if stats.get("languages"):
        rows.append(("languages", ", ".join(f"{k} {v:,}" for k, v in stats["languages"].items())))
    return _table(rows)


def _training_lines(info: dict[str, Any], ckpt: dict[str, Any]) -> list[str]:
    rows: list[tuple[str, Any]] = [("model", info["model_class"]), ("objective", info["objective"]),
                                   ("steps", info["global_step"])]  # fmt: skip
    items = (ckpt.get("gitnetic_fingerprint") or {}).get("items") or {}
    rows += [(name, f"`{value}`") for name, value in sorted(items.items()) if "(content)" not in name]
    return _table(rows)


def model_card(
    info: dict[str, Any],
    ckpt: dict[str, Any],
    name: str,
    evaluation: dict[str, Any] | None,
    bench: dict[str, Any] | None,
    corpus: dict[str, Any] | None,
) -> str:
    """The card's text: YAML front matter, then the body."""
    license_meta, license_line = _license((corpus or {}).get("licenses"))
    meta: dict[str, Any] = {"library_name": "transformers", "pipeline_tag": "text-generation",
                            "tags": ["gitnetic", "code", info["model_class"]]}  # fmt: skip
    meta.update(license_meta)
    index = _model_index(name, evaluation, bench)
    if index:
        meta["model-index"] = index
    body = [f"# {name}", "", f"A {info['model_class']} ({info['objective']}) trained on source code with "
            "gitnetic, exported from `" + str(info["checkpoint"]) + "`.", ""]  # fmt: skip
    body += ["## Use", "", "```python", "from transformers import AutoModelForCausalLM, AutoTokenizer",
             f'model = AutoModelForCausalLM.from_pretrained("{name}")',
             f'tokenizer = AutoTokenizer.from_pretrained("{name}")', "```", ""]  # fmt: skip
    body += ["## Results", ""]
    if bench:
        scores = ", ".join(f"{k} {v:.3f}" for k, v in bench.items() if k.startswith("pass@"))
        body.append(f"- {bench.get('problems')}: {scores} over {bench.get('scored_problems')} problems, "
                    f"{bench.get('n_samples')} sample(s) each, temperature {bench.get('temperature')}, prompts "
                    f"'{bench.get('prompt_mode')}' (code run in gitnetic's sandbox).")  # fmt: skip
        for set_name, inf in (bench.get("infill") or {}).items():
            scores = ", ".join(f"{k} {v:.3f}" for k, v in inf.items() if k.startswith("pass@"))
            body.append(f"- HumanEval {set_name} infilling (OpenAI's task set): {scores} by execution, "
                        f"exact match {inf['exact_match']:.3f}, over {inf['tasks']} of its "
                        f"{inf['set_tasks']} tasks.")  # fmt: skip
    if evaluation and "perplexity" in evaluation:
        bpb = evaluation.get("bits_per_byte")
        body.append(f"- held-out perplexity {evaluation['perplexity']:.2f} (unigram baseline "
                    f"{evaluation.get('unigram_perplexity', float('nan')):.2f})"
                    + (f", {bpb:.4f} bits per byte" if bpb is not None else "")
                    + f" on {evaluation.get('tokens', 0):,} tokens.")  # fmt: skip
        base = evaluation.get("base")
        if isinstance(base, dict) and base.get("perplexity") is not None:
            change = f"perplexity {base['perplexity']:.2f} -> {evaluation['perplexity']:.2f}"
            if base.get("bits_per_byte") is not None and bpb is not None:
                change += f", bits per byte {base['bits_per_byte']:.4f} -> {bpb:.4f}"
            body.append(f"- fine-tuned from `{base.get('model')}`: on the same held-out tokens, {change} "
                        "(base -> this model).")  # fmt: skip
    if not bench and not evaluation:
        body.append("No evaluation results were found (export's --eval_metrics / --benchmark_metrics).")
    body += ["", "## Training data", "", *_corpus_lines(corpus)]
    if license_line:
        body += ["", license_line]
    body += ["", "## Training", "", *_training_lines(info, ckpt), ""]
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(body)
