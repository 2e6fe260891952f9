"""The tokenizer step: training a byte-level BPE tokenizer on the corpus (``train``), sampling a large
split for it (``sample``), FIM token names (``fim_tokens``) and the one loader every later step uses
(``load``).

``load_tokenizer`` is also reachable here, lazily: it is what a user's own task calls
(``from gitnetic.data.tokenizer import load_tokenizer``), and importing this package must stay free of
``tokenizers``/``transformers`` for the modules that only need the token names.
"""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    if name == "load_tokenizer":
        from gitnetic.data.tokenizer.load import load_tokenizer

        return load_tokenizer
    raise AttributeError(f"module 'gitnetic.data.tokenizer' has no attribute {name!r}")
