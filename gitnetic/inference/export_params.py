"""The export stage's params, apart from the export itself, which loads torch and transformers.

Why a module of their own: ``python -m gitnetic export --help`` and a mistyped flag are answered
from these alone, in a fraction of a second instead of the seconds torch takes to load.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitnetic.models.trained_params import TrainedModelParams

__all__ = ["ExportParams"]


@dataclass
class ExportParams(TrainedModelParams):
    """Export: which checkpoint, how its model was built, where to write the folder."""

    output_dir: str = field(default="models/hf", metadata={"help": "Folder to write (replaced atomically)."})
    corpus_stats: str = field(
        default="data/corpus/stats.json",
        metadata={
            "help": "The corpus stage's stats.json; its per-source licenses are written to licenses.json in "
            "the folder (a missing file: an empty licenses.json, with one log line); the model card quotes "
            "its sources, licenses and statistics."
        },
    )
    eval_metrics: str = field(
        default="metrics/eval.json",
        metadata={"help": "evaluate's metrics JSON, quoted in the model card (left out when missing)."},
    )
    benchmark_metrics: str = field(
        default="metrics/benchmark.json",
        metadata={
            "help": "benchmark's metrics JSON (pass@k), in the card's model-index (left out when missing)."
        },
    )
