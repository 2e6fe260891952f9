"""The names of StarCoder's fill-in-the-middle special tokens (the format: ``gitnetic.data.loading.fim``, docs/fim.md).

Why a module of their own: the tokenizer stage adds these tokens to every tokenizer it trains with
``--fim_tokens`` and must not load torch, which ``gitnetic.data.loading.fim`` (a torch ``Dataset``) does.
"""

from __future__ import annotations

FIM_PREFIX = "<fim_prefix>"
FIM_MIDDLE = "<fim_middle>"
FIM_SUFFIX = "<fim_suffix>"
FIM_PAD = "<fim_pad>"
# StarCoder's names, in the order its tokenizer lists them.
FIM_TOKENS = [FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX, FIM_PAD]
