"""Byte-level BPE tokenizer training and loading.

We train with HF ``tokenizers`` (Rust, multi-threaded) from a stream of documents and save a folder that
``transformers.AutoTokenizer.from_pretrained(path)`` loads offline. Byte-level BPE with no normalizer and
no prefix space is lossless on code: tabs, CRLF and any unicode decode back byte for byte.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from gitnetic.common.dataclass_argparse import DataclassBase
from gitnetic.common.errors import DataError
from gitnetic.common.io import atomic_dir

# RoBERTa's order, so <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4 as existing checkpoints expect.
DEFAULT_SPECIAL_TOKENS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
TOKENIZER_FILE = "tokenizer.json"


@dataclass
class TokenizerParams(DataclassBase):
    """Byte-level BPE training parameters."""

    vocab_size: int = field(
        default=16384, metadata={"help": "Vocabulary size, special tokens and 256 bytes included."}
    )
    min_frequency: int = field(default=2, metadata={"help": "A merge must occur at least this often."})
    special_tokens: list[str] = field(
        default_factory=lambda: list(DEFAULT_SPECIAL_TOKENS),
        metadata={"help": "Special tokens, in id order: bos, pad, eos, unk, mask (roles are taken by name)."},
    )
    max_sample_bytes: int = field(
        default=0,
        metadata={
            "help": "Train on at most this many bytes of the train split (0 = all): bounds time/RAM on big corpora."
        },
    )
    model_max_length: int = field(
        default=1024, metadata={"help": "model_max_length saved with the tokenizer."}
    )
    fim_tokens: bool = field(
        default=False,
        metadata={
            "help": "Also add StarCoder's fill-in-the-middle tokens <fim_prefix> <fim_middle> <fim_suffix> "
            "<fim_pad> (after --special_tokens), needed to train with --fim_rate and to infill; literal "
            "occurrences in code stay ordinary text."
        },
    )

    def all_special_tokens(self) -> list[str]:
        """``special_tokens``, plus the FIM tokens when ``fim_tokens`` (each once, in id order)."""
        from gitnetic.data.fim import FIM_TOKENS

        tokens = list(self.special_tokens)
        if self.fim_tokens:
            tokens += [t for t in FIM_TOKENS if t not in tokens]
        return tokens


def _role_tokens(special_tokens: list[str]) -> dict[str, str]:
    roles = {
        "bos_token": "<s>",
        "eos_token": "</s>",
        "pad_token": "<pad>",
        "unk_token": "<unk>",
        "mask_token": "<mask>",
    }
    return {role: tok for role, tok in roles.items() if tok in special_tokens}


def train_tokenizer(texts: Iterable[str], out_dir: str | Path, params: TokenizerParams | None = None):
    """Train a byte-level BPE on ``texts`` (streamed) and save it to ``out_dir`` atomically.

    Returns the loaded ``PreTrainedTokenizerFast``.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    params = params or TokenizerParams()
    special_tokens = params.all_special_tokens()
    if params.vocab_size < 256 + len(special_tokens):
        raise DataError(
            f"vocab_size {params.vocab_size} is too small for 256 byte tokens plus "
            f"{len(special_tokens)} special tokens; use at least {256 + len(special_tokens)}"
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=params.vocab_size,
        min_frequency=params.min_frequency,
        special_tokens=special_tokens,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=sys.stderr.isatty(),  # its bars are noise in logs and DVC/Snakemake output
    )
    seen = {"docs": 0}

    def counted(stream: Iterable[str]) -> Iterator[str]:
        for text in stream:
            seen["docs"] += 1
            yield text

    tokenizer.train_from_iterator(_cap_bytes(counted(texts), params.max_sample_bytes), trainer=trainer)
    if seen["docs"] == 0:
        raise DataError(
            "no documents to train the tokenizer on; check that the corpus train split is not empty"
        )
    return save_tokenizer(tokenizer, out_dir, params)


def _cap_bytes(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    total = 0
    for text in texts:
        yield text
        total += len(text.encode("utf-8", "surrogatepass"))
        if max_bytes and total >= max_bytes:
            return


def save_tokenizer(tokenizer, out_dir: str | Path, params: TokenizerParams):
    """Wrap a ``tokenizers.Tokenizer`` as ``PreTrainedTokenizerFast`` and save it (atomically)."""
    from transformers import PreTrainedTokenizerFast

    special_tokens = params.all_special_tokens()
    roles = _role_tokens(special_tokens)
    extra = [t for t in special_tokens if t not in roles.values()]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        clean_up_tokenization_spaces=False,
        model_max_length=params.model_max_length,
        **roles,
        **({"additional_special_tokens": extra} if extra else {}),
    )
    with atomic_dir(out_dir) as tmp:
        fast.save_pretrained(str(tmp))
        (tmp / "gitnetic_tokenizer.json").write_text(json.dumps(params.to_dict(), indent=2) + "\n")
    return load_tokenizer(out_dir)


# tokenizer_config.json classes that are exactly PreTrainedTokenizerFast (TokenizersBackend in transformers 5).
_PLAIN_FAST_CLASSES = {"PreTrainedTokenizerFast", "TokenizersBackend"}


def load_tokenizer(path: str | Path):
    """Load a tokenizer folder saved by :func:`train_tokenizer` (or any HF fast tokenizer folder).

    Our own folders load through ``PreTrainedTokenizerFast`` directly: it is the class ``AutoTokenizer``
    would pick, but importing ``AutoTokenizer`` pulls in torch (seconds per process) which the data
    stages never need. Other folders go through ``AutoTokenizer``.
    """
    from transformers import PreTrainedTokenizerFast

    p = Path(path)
    if p.is_file() and p.name.endswith(".json"):
        return PreTrainedTokenizerFast(tokenizer_file=str(p), clean_up_tokenization_spaces=False)
    if not (p / TOKENIZER_FILE).is_file():
        raise DataError(
            f"no tokenizer at {p} (missing {TOKENIZER_FILE}); run 'python -m gitnetic tokenizer' first "
            "or pass the folder it wrote"
        )
    try:
        if _tokenizer_class(p) in _PLAIN_FAST_CLASSES:
            return PreTrainedTokenizerFast.from_pretrained(str(p), local_files_only=True)
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError, json.JSONDecodeError) as exc:
        raise DataError(f"tokenizer at {p} could not be loaded ({exc}); re-run the tokenizer stage") from None


def load_backend_tokenizer(path: str | Path):
    """The ``tokenizers.Tokenizer`` of a tokenizer folder (or ``tokenizer.json``).

    Why a second loader: the binarizer needs only the Rust tokenizer, and this one does not import
    transformers, which saves seconds per preprocess job. A folder without ``tokenizer.json`` goes
    through :func:`load_tokenizer`, so the error message is the same one-line ``DataError``.
    """
    from tokenizers import Tokenizer

    p = Path(path)
    file = p if p.is_file() else p / TOKENIZER_FILE
    if not file.is_file():
        return load_tokenizer(p).backend_tokenizer  # raises the stage's one-line DataError
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # tokenizers raises plain Exception on bad JSON
        raise DataError(f"tokenizer {file} could not be loaded ({exc}); re-run the tokenizer stage") from None


def _tokenizer_class(folder: Path) -> str | None:
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return None
    try:
        value = json.loads(config.read_text(encoding="utf-8")).get("tokenizer_class")
    except (OSError, ValueError, AttributeError):
        return None  # let AutoTokenizer report what is wrong
    return value if isinstance(value, str) else None
