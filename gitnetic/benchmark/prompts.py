"""What the model sees and where its answer ends, as the reference harnesses do it.

**Prompt stripping** moves HumanEval scores by tens of points for some models, so it is a choice:

* ``none``: the prompt exactly as the problem gives it (OpenAI's ``human-eval``, the Codex paper). It
  ends with a newline after the docstring, which a byte-level BPE model rarely saw alone (it usually
  merged it with the indentation that follows: ``"\\n    "``), so such models often do worse.
* ``strip``: surrounding whitespace removed (bigcode-evaluation-harness's default for HumanEval,
  StarCoder's reported numbers); the model writes the newline and indentation itself.
* ``rstrip``: trailing whitespace removed only.

The program that is executed is the prompt *the model saw* followed by its completion, the tests and
``check(entry_point)``, so both halves agree whatever the choice.

**Stop sequences**: a completion ends at the first of :data:`STOP_SEQUENCES` (bigcode-evaluation-
harness's HumanEval list; the Codex paper used the first five of ``\\nclass \\ndef \\n# \\nif \\nprint``):
a new top-level statement means the function body is over. Generation also ends at ``</s>``; both
cut the text, neither is kept.
"""

from __future__ import annotations

from typing import get_args

from gitnetic.benchmark.params import PromptMode

__all__ = ["PROMPT_MODES", "STOP_SEQUENCES", "PromptMode", "model_prompt", "truncate_at_stop"]

PROMPT_MODES: tuple[str, ...] = get_args(PromptMode)
STOP_SEQUENCES: tuple[str, ...] = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```")


def model_prompt(prompt: str, mode: str) -> str:
    """The prompt the model is given under ``mode``."""
    if mode == "strip":
        return prompt.strip()
    if mode == "rstrip":
        return prompt.rstrip()
    return prompt


def truncate_at_stop(text: str, stops: tuple[str, ...] = STOP_SEQUENCES) -> str:
    """``text`` up to (not including) its first stop sequence."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]
