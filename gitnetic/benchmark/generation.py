"""Sampling many completions of one prompt at once, reproducibly.

All samples of a prompt (or ``batch_size`` of them) are one batch: the prompt is repeated in the batch
and transformers' ``generate`` decodes every row with the KV cache, each row stopping at ``</s>`` or a
stop sequence (checked on each new token's text). Each batch is seeded from the run's seed, the
problem's index and the batch's first sample, so a batch regenerated after a kill gives the same text. The model and prompt
encoding come from :mod:`gitnetic.inference.generate` (this is the benchmark's one call site of it):
prompts are encoded as preprocess encoded the corpus and infill prompts in the FIM layout of training.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from transformers import StoppingCriteria

from gitnetic.benchmark.prompts import STOP_SEQUENCES, truncate_at_stop
from gitnetic.inference.generate import Generator, load_generation_model

__all__ = ["Decoding", "SampleGenerator", "batch_seed"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decoding:
    """How to sample: temperature 0 is greedy (then every sample is the same)."""

    max_new_tokens: int
    temperature: float
    top_p: float
    top_k: int


def batch_seed(seed: int, task_index: int, first_sample: int) -> int:
    """A seed for one batch that does not depend on what ran before it (so resumes reproduce)."""
    digest = hashlib.sha256(f"{seed}:{task_index}:{first_sample}".encode()).digest()
    return int.from_bytes(digest[:4], "little")


class _StopOnText(StoppingCriteria):
    """Per row, done once the text generated so far holds a stop sequence.

    transformers' ``stop_strings`` does the same token-aware check but cost a quarter of the decoding
    time of a small model on CPU (bench/benchmark.py); here each step looks at each row's newest
    token's cached text only, appended to a short tail of that row's text."""

    def __init__(self, text_of: Any, stops: tuple[str, ...], prompt_len: int, rows: int) -> None:
        self.text_of, self.stops, self.start = text_of, stops, prompt_len
        self.keep = max(map(len, stops), default=1)
        self.tails = [""] * rows
        self.done = [False] * rows

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        if input_ids.shape[1] > self.start:
            for row, token in enumerate(input_ids[:, -1].tolist()):
                if not self.done[row]:
                    tail = self.tails[row] + self.text_of(token)
                    self.done[row] = any(stop in tail for stop in self.stops)
                    self.tails[row] = tail[-self.keep :]
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


class SampleGenerator:
    """A loaded causal LM that samples batches of completions."""

    def __init__(
        self, model: str, config_path: str | None, tokenizer_path: str | None, device: str = "auto"
    ) -> None:
        net, tokenizer = load_generation_model(model, config_path, tokenizer_path)
        self.generator = Generator(net, tokenizer, device)
        self.tokenizer = tokenizer
        self.truncated_prompts = 0
        self.new_tokens = 0  # tokens generated so far, padding after a row's end not counted
        self._texts: dict[int, str] = {}

    def _token_text(self, token: int) -> str:
        """One token's text (cached): the stop check reads each new token once."""
        text = self._texts.get(token)
        if text is None:
            text = self._texts[token] = self.tokenizer.decode([token], skip_special_tokens=True)
        return text

    def complete(
        self, prompt: str, count: int, decoding: Decoding, seed: int, stops: Sequence[str] = STOP_SEQUENCES
    ) -> list[str]:
        """``count`` completions of ``prompt``, each cut at its first stop sequence."""
        texts = self._sample(self.generator.prompt_ids(prompt), count, decoding, seed, tuple(stops))
        return [truncate_at_stop(t, tuple(stops)) for t in texts]

    def infill(
        self, prefix: str, suffix: str, count: int, decoding: Decoding, seed: int, one_line: bool
    ) -> list[str]:
        """``count`` middles between ``prefix`` and ``suffix`` (FIM), each ending where the model ends it
        (``</s>``) or, with ``one_line``, after its first newline (added if the model ended the line
        without one: the middle of a single-line task is a whole line, as OpenAI's canonical ones are)."""
        ids = self.generator.infill_ids(prefix, suffix)  # (a one-line error without FIM tokens)
        context = self.generator.context
        if context is not None and len(ids) + decoding.max_new_tokens > context:
            # too long: keep the code nearest the hole, as much of it before as after
            encode = self.generator.encoder.encode
            before, after = encode(prefix).tolist(), self.generator.encode_suffix(suffix)
            overhead = self.generator.fim.prompt_overhead if self.generator.fim else 3
            room = max(2, context - min(decoding.max_new_tokens, context // 2) - overhead)
            keep_after = min(len(after), room // 2)
            keep_before = min(len(before), room - keep_after)
            ids = self.generator.infill_token_ids(before[len(before) - keep_before :], after[:keep_after])
            self.truncated_prompts += 1
        texts = self._sample(ids, count, decoding, seed, ("\n",) if one_line else ())
        return [text.split("\n", 1)[0] + "\n" if one_line else text for text in texts]

    def _fit(self, ids: list[int], max_new: int) -> tuple[list[int], int]:
        """Keep the prompt's end and the new tokens within the model's context."""
        context = self.generator.context
        if context is None or len(ids) + max_new <= context:
            return ids, max_new
        max_new = min(max_new, context // 2)
        if len(ids) + max_new > context:
            self.truncated_prompts += 1
            ids = ids[len(ids) + max_new - context :]
        return ids, max_new

    def _sample(
        self, ids: list[int], count: int, decoding: Decoding, seed: int, stops: tuple[str, ...]
    ) -> list[str]:
        ids, max_new = self._fit(ids, decoding.max_new_tokens)
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new,
            "stopping_criteria": [_StopOnText(self._token_text, stops, len(ids), count)],
        }
        if decoding.temperature == 0:
            kwargs["do_sample"] = False
        else:
            kwargs.update(
                do_sample=True, temperature=decoding.temperature, top_p=decoding.top_p, top_k=decoding.top_k
            )
        eos = self.generator.eos_id
        fim = self.generator.fim
        ends = [int(i) for i in (eos, fim.eot if fim else None) if i is not None]  # CodeLlama: ▁<EOT>
        if ends:
            kwargs["eos_token_id"] = ends if len(ends) > 1 else ends[0]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        if pad is not None:
            kwargs["pad_token_id"] = int(pad)
        device = self.generator.device
        input_ids = torch.tensor([ids] * count, dtype=torch.long, device=device)
        torch.manual_seed(seed)
        with torch.inference_mode():
            out = self.generator.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
            )
        new = out[:, len(ids) :]
        if pad is not None:
            self.new_tokens += int((new != int(pad)).sum())
        return self.tokenizer.batch_decode(
            new.tolist(), skip_special_tokens=True, clean_up_tokenization_spaces=False
        )
