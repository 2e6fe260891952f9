"""Byte-level BPE tokenizer training, and the tokenizer stage.

We train with HF ``tokenizers`` (Rust, multi-threaded) from a stream of documents and save a folder that
``transformers.AutoTokenizer.from_pretrained(path)`` loads offline. Byte-level BPE with no normalizer and
no prefix space is lossless on code: tabs, CRLF and any unicode decode back byte for byte.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from gitnetic.common.errors import DataError
from gitnetic.common.files import file_problem
from gitnetic.common.io import atomic_dir
from gitnetic.common.memory import peak_rss_bytes
from gitnetic.data.jsonl import iter_jsonl_texts
from gitnetic.data.tokenizer.load import load_model_folder_tokenizer, load_tokenizer
from gitnetic.data.tokenizer.params import TokenizerParams, TokenizerStageParams
from gitnetic.data.tokenizer.sample import SplitSample


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

    Reading stops at the document that reaches ``max_sample_bytes``: a prefix of ``texts``, which the
    tokenizer stage makes a spread-out sample by passing a :class:`SplitSample`'s texts.
    Returns the loaded ``PreTrainedTokenizerFast``.
    """
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
    counted = texts if isinstance(texts, CountedTexts) else CountedTexts(texts)
    tokenizer.train_from_iterator(_cap_bytes(counted, params.max_sample_bytes), trainer=trainer)
    if counted.documents == 0:
        raise DataError(
            "no documents to train the tokenizer on; check that the corpus train split is not empty"
        )
    return save_tokenizer(tokenizer, out_dir, params)


class CountedTexts:
    """Documents streamed once, counting how many were read and their UTF-8 bytes (training stops
    reading once ``max_sample_bytes`` were read, so only what was consumed is counted)."""

    def __init__(self, texts: Iterable[str]) -> None:
        self._texts = texts
        self.documents = 0
        self.bytes = 0

    def __iter__(self) -> Iterator[str]:
        for text in self._texts:
            self.documents += 1
            self.bytes += _utf8_len(text)
            yield text


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _cap_bytes(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    total = 0
    for text in texts:
        yield text
        total += _utf8_len(text)
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


# ---------------------------------------------------------------------------- the tokenizer stage
# How many train documents the stage encodes to report compression and check losslessness.
SAMPLE_DOCS = 200


@dataclass
class SampleCheck:
    """Compression and losslessness measured on the first train documents."""

    documents: int = 0
    bytes: int = 0
    tokens: int = 0
    lossy: int = 0  # documents that did not decode back exactly


@dataclass
class TokenizerStageResult:
    """What the stage did: trained on ``documents``/``bytes`` of the train split, or copied a folder's,
    and what training cost (``seconds`` of wall time, the process's ``peak_rss`` bytes)."""

    tokenizer: object
    out_dir: str
    copied_from: str | None = None
    train_file: str | None = None
    documents: int = 0
    bytes: int = 0
    sample: SampleCheck | None = None
    split: SplitSample | None = None  # what was read of the train split: all of it or a sample
    seconds: float = 0.0
    peak_rss: int = 0


def tokenizer_stage(stage: TokenizerStageParams, params: TokenizerParams) -> TokenizerStageResult:
    """``python -m gitnetic tokenizer``: train on the train split (or copy ``init_from``'s tokenizer)."""
    if stage.init_from:
        return TokenizerStageResult(
            copy_pretrained_tokenizer(stage.init_from, stage.out_dir),
            stage.out_dir,
            copied_from=stage.init_from,
        )
    train_file = Path(stage.train_file)
    problem = file_problem(train_file)
    if problem == "does not exist":
        raise DataError(
            f"train split {train_file} does not exist; run 'python -m gitnetic corpus' first or pass --train_file"
        )
    if problem:  # a folder or a pipe: the sample seeks in it, so a regular file it must be
        raise DataError(f"--train_file {train_file} {problem}; pass the corpus' train.jsonl")
    start = time.perf_counter()
    split = SplitSample.of(train_file, params.max_sample_bytes, params.sample_seed)
    texts = CountedTexts(split.texts())
    tokenizer = train_tokenizer(texts, stage.out_dir, params)
    seconds = time.perf_counter() - start
    sample = sample_check(tokenizer, iter_jsonl_texts(train_file), SAMPLE_DOCS)
    return TokenizerStageResult(
        tokenizer, stage.out_dir, train_file=str(train_file), documents=texts.documents, bytes=texts.bytes,
        sample=sample, split=split, seconds=seconds, peak_rss=peak_rss_bytes(),
    )  # fmt: skip


def copy_pretrained_tokenizer(folder: str | Path, out_dir: str | Path):
    """Save a model folder's tokenizer as the stage's output, so preprocess and train use exactly it."""
    tokenizer = load_model_folder_tokenizer(folder, "--init_from")
    with atomic_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
    return tokenizer


def sample_check(tokenizer, texts: Iterable[str], max_docs: int) -> SampleCheck:
    """Bytes per token on the first ``max_docs`` texts, and how many of them do not decode back exactly."""
    backend = tokenizer.backend_tokenizer  # the saved tokenizer.json itself, without length warnings
    check = SampleCheck()
    for text in texts:
        ids = backend.encode(text, add_special_tokens=False).ids
        check.bytes += _utf8_len(text)
        check.tokens += len(ids)
        check.documents += 1
        if backend.decode(ids, skip_special_tokens=False) != text:
            check.lossy += 1
        if check.documents >= max_docs:
            break
    return check
