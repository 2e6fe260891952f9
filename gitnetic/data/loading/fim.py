"""Fill-in-the-middle (FIM, Bavarian et al. 2022) in the tokenizer's own format, applied to training samples.

A causal LM only learns to continue text to the right. FIM teaches it to fill a gap: a document is cut
at two random points into prefix / middle / suffix and rearranged so the middle comes last::

    PSM: <fim_prefix> prefix <fim_suffix> suffix <fim_middle> middle
    SPM: <fim_prefix> <fim_suffix> suffix <fim_middle> prefix middle

(SPM is the FIM paper's "variant 2", as in bigcode's Megatron-LM). At inference the model gets
everything up to ``<fim_middle>`` and writes the middle, ending with ``</s>``. These are StarCoder's
names; a pretrained model's tokenizer brings its own family's tokens and conventions
(``gitnetic.data.tokenizer.fim_tokens``: Qwen2.5-Coder, DeepSeek-Coder, CodeLlama, ...), which the same
code lays out. The exact formats, which an inference server needs, are in docs/fim.md.

Samples keep their length: the transform runs per document *inside* a sample the data module already
built (a packed block or a truncated sequence), documents are found by the ``</s>`` preprocess appends
(literal ``</s>`` text never encodes to that id), and the three sentinels (CodeLlama: four, with the
``▁<EOT>`` after the middle) displace the last content tokens of the document piece (bigcode truncates the suffix the same way). Randomness is a pure
function of ``(seed, sample index)``, so DDP ranks (disjoint indices) draw disjoint streams and a resumed
run rebuilds exactly the samples of an uninterrupted one without storing any RNG state.

A document that starts with a repository header (preprocess ``--repo_context``) keeps it in front:
only the tokens after it are cut and laid out, as StarCoder2 (``<repo_name>R<file_sep><fim_prefix>PATH\n
...``) and Qwen2.5-Coder (``<|repo_name|>R\n<|file_sep|>PATH\n<|fim_prefix|>...``) were trained; the header
is found by its tokens (:func:`gitnetic.data.tokenizer.fim_tokens.header_length`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset

from gitnetic.common.errors import ConfigError
from gitnetic.data.tokenizer.fim_tokens import (
    FIM_MIDDLE,
    FIM_PAD,
    FIM_PREFIX,
    FIM_SUFFIX,
    FIM_TOKENS,
    FimIds,
    fim_ids,
    fim_pieces,
    header_length,
)

__all__ = [
    "FIM_PREFIX",
    "FIM_MIDDLE",
    "FIM_SUFFIX",
    "FIM_PAD",
    "FIM_TOKENS",
    "FimIds",
    "FimDataset",
    "fim_ids",
    "permute",
    "apply_fim",
    "fim_rng",
]

SENTINELS = 3  # tokens a FIM'd document gains: prefix, suffix and middle markers (CodeLlama: + ▁<EOT>)
_FIM_KEY = 0xF1A  # separates the FIM stream from every other use of the seed


def fim_rng(seed: int, index: int) -> np.random.Generator:
    """The FIM random stream of sample ``index`` in a run seeded with ``seed``."""
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, _FIM_KEY, int(index) & 0xFFFFFFFFFFFF])


def permute(content: np.ndarray, ids: FimIds, boundaries: tuple[int, int], spm: bool) -> np.ndarray:
    """One document's content (no ``</s>``) in the FIM layout of ``ids``'s family, same length:
    ``content[:n-k]`` is split at ``boundaries`` (``0 <= lo <= hi <= n-k``) and its last ``k =
    ids.sentinels`` tokens make room for the sentinels (and the family's end-of-middle token)."""
    keep = len(content) - ids.sentinels
    lo, hi = boundaries
    if keep < 1 or not 0 <= lo <= hi <= keep:
        raise ValueError(f"bad FIM boundaries {boundaries} for {len(content)} tokens")
    body = content[:keep]
    prefix, middle, suffix = body[:lo], body[lo:hi], body[hi:]
    dtype = content.dtype
    parts = [np.asarray(p, dtype) for p in fim_pieces(ids, prefix, suffix, spm)]
    parts.append(middle)
    if ids.eot is not None:
        parts.append(np.array([ids.eot], dtype))
    return np.concatenate(parts)


def apply_fim(
    sample: np.ndarray,
    rng: np.random.Generator,
    ids: FimIds,
    eos_id: int,
    fim_rate: float,
    spm_rate: float,
    newline: np.ndarray | None = None,
) -> np.ndarray:
    """``sample`` with each document piece (split after every ``eos_id``) FIM'd with probability
    ``fim_rate`` (SPM with probability ``spm_rate`` when the family trains SPM, else PSM); the result
    has the same length and the ``</s>`` ending a piece stays at its end, so the model learns to stop
    after the middle. A piece's repository header stays before the layout (``newline``: the
    tokenizer's newline mask, for families whose header ends with the path's newline)."""
    out = np.array(sample, copy=True)
    ends = np.flatnonzero(out == eos_id) + 1
    start = 0
    for end in [*ends.tolist(), len(out)]:
        if end <= start:
            continue
        stop = end - 1 if out[end - 1] == eos_id else end  # content only; keep the </s>
        start += header_length(out[start:stop], ids, newline)  # the header stays where it is
        draw = rng.random()
        n = stop - start
        if draw < fim_rate and n > ids.sentinels:
            keep = n - ids.sentinels
            lo, hi = sorted(int(b) for b in rng.integers(0, keep + 1, size=2))
            spm = bool(rng.random() < spm_rate) and ids.spm  # (drawn anyway: one stream for all families)
            out[start:stop] = permute(out[start:stop], ids, (lo, hi), spm)
        start = end
    return out


class FimDataset(Dataset):
    """Wraps a sample dataset (packed blocks or truncated sequences) and FIMs each sample on read."""

    def __init__(
        self,
        dataset: Any,
        ids: FimIds,
        eos_id: int,
        fim_rate: float,
        spm_rate: float,
        seed: int,
        newline: np.ndarray | None = None,
    ) -> None:
        if not 0 <= fim_rate <= 1 or not 0 <= spm_rate <= 1:
            raise ConfigError(
                f"--fim_rate and --fim_spm_rate must be in [0, 1], got {fim_rate} and {spm_rate}"
            )
        self.dataset = dataset
        self.ids = ids
        self.eos_id = int(eos_id)
        self.fim_rate = float(fim_rate)
        self.spm_rate = float(spm_rate)
        self.seed = int(seed)
        self.newline = newline  # the tokenizer's newline mask (header_length, for Qwen2.5-Coder's headers)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> np.ndarray:
        sample = np.asarray(self.dataset[index])
        return apply_fim(
            sample,
            fim_rng(self.seed, index),
            self.ids,
            self.eos_id,
            self.fim_rate,
            self.spm_rate,
            self.newline,
        )
