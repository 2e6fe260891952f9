"""``python -m gitnetic tokenizer``: stage 2, train split -> byte-level BPE tokenizer folder."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gitnetic.common.dataclass_argparse import DataclassArgumentParser, DataclassBase
from gitnetic.common.errors import DataError

DESCRIPTION = (
    "Train a lossless byte-level BPE tokenizer on the corpus train split (streamed, optionally capped by "
    "--max_sample_bytes) and save a folder that transformers.AutoTokenizer.from_pretrained loads offline, "
    "with <s>=0, <pad>=1, </s>=2, <unk>=3, <mask>=4."
)

log = logging.getLogger(__name__)

# How many train documents the closing summary encodes to report compression and check losslessness.
_SUMMARY_DOCS = 200


@dataclass
class TokenizerCliParams(DataclassBase):
    """Input and output of the tokenizer stage."""

    train_file: str = field(
        default="data/corpus/train.jsonl",
        metadata={
            "help": "JSONL train split written by 'python -m gitnetic corpus' (one {\"text\": ...} per line)."
        },
    )
    out_dir: str = field(default="data/tokenizer", metadata={"help": "Folder to save the tokenizer to."})
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue pretraining: copy the tokenizer of this local HF model folder (e.g. an export) "
            "to --out_dir instead of training one; set the same folder as train's --init_from."
        },
    )


def build_parser() -> DataclassArgumentParser:
    from gitnetic.data.tokenizer import TokenizerParams

    parser = DataclassArgumentParser(prog="python -m gitnetic tokenizer", description=DESCRIPTION)
    parser.add_arguments(TokenizerCliParams)
    parser.add_arguments(TokenizerParams)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from gitnetic.data.jsonl import iter_jsonl_texts
    from gitnetic.data.tokenizer import train_tokenizer

    cli, params, _ = build_parser().parse_args_into_dataclasses(argv)
    if cli.init_from:
        return _copy_pretrained(cli.init_from, cli.out_dir)
    train_file = Path(cli.train_file)
    if not train_file.is_file():
        raise DataError(
            f"train split {train_file} does not exist; run 'python -m gitnetic corpus' first or pass --train_file"
        )
    seen = {"docs": 0, "bytes": 0}

    def counted() -> Iterator[str]:
        for text in iter_jsonl_texts(train_file):
            seen["docs"] += 1
            seen["bytes"] += len(text.encode("utf-8"))
            yield text

    tokenizer = train_tokenizer(counted(), cli.out_dir, params)
    ids = [tokenizer.convert_tokens_to_ids(t) for t in params.all_special_tokens()]
    print(
        f"trained tokenizer: vocab size {len(tokenizer)} ({len(ids)} special tokens, ids {ids}) on "
        f"{seen['docs']} documents / {seen['bytes']:,} bytes of {train_file}; saved to {cli.out_dir}"
    )
    if len(tokenizer) < params.vocab_size:
        print(
            f"note: asked for vocab_size {params.vocab_size} but the sample only supports {len(tokenizer)} "
            f"tokens (merges rarer than min_frequency {params.min_frequency} were not learned); add data"
        )
    _summarize(tokenizer, train_file)
    return 0


def _copy_pretrained(folder: str, out_dir: str) -> int:
    """Save the model folder's tokenizer as this stage's output, so preprocess and train use exactly it."""
    from gitnetic.common.io import atomic_dir
    from gitnetic.tasks.hf_folder import load_hf_tokenizer

    tokenizer = load_hf_tokenizer(folder, "--init_from")
    with atomic_dir(out_dir) as tmp:
        tokenizer.save_pretrained(str(tmp))
    print(
        f"copied the tokenizer of {folder} (vocab size {len(tokenizer)}, eos {tokenizer.eos_token!r}) to "
        f"{out_dir}; no tokenizer was trained"
    )
    return 0


def _summarize(tokenizer, train_file: Path) -> None:
    """Report bytes per token on a few documents and check they decode back exactly (lossless)."""
    from gitnetic.data.jsonl import iter_jsonl_texts

    backend = tokenizer.backend_tokenizer  # the saved tokenizer.json itself, without length warnings
    n_bytes = n_tokens = n_docs = lossy = 0
    for text in iter_jsonl_texts(train_file):
        ids = backend.encode(text, add_special_tokens=False).ids
        n_bytes += len(text.encode("utf-8"))
        n_tokens += len(ids)
        n_docs += 1
        if backend.decode(ids, skip_special_tokens=False) != text:
            lossy += 1
        if n_docs >= _SUMMARY_DOCS:
            break
    if n_tokens:
        print(f"compression: {n_bytes / n_tokens:.2f} bytes/token on the first {n_docs} train documents")
    if lossy:
        log.warning("tokenizer: warning: %d of %d documents did not decode back exactly", lossy, n_docs)
