"""Sampling from a trained model: left-to-right completion and fill-in-the-middle infilling.

Decoding itself is transformers' ``generate`` (KV cache, greedy / temperature / top-k / top-p, stop at
``</s>``) with a streamer, so tokens appear as they are produced. What gitnetic adds is what must match
training exactly: prompts are encoded the way preprocess encoded the corpus (literal ``</s>`` or
``<fim_prefix>`` in code stay text), an empty prompt starts after ``</s>`` like every training
document, and an infill prompt is built in the FIM layout of training (docs/fim.md).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import torch

from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data.hf_folder import WEIGHT_FILES, is_hf_model_folder
from gitnetic.data.loading.fim import fim_ids
from gitnetic.data.shards.encoder import HFEncoder
from gitnetic.data.tokenizer.fim_tokens import (
    FimIds,
    infill_prompt,
    no_fim_tokens,
    repo_context,
    split_context,
)
from gitnetic.data.tokenizer.load import load_model_folder_tokenizer
from gitnetic.inference.params import DecodingParams, GenerateParams
from gitnetic.models.checkpoint import checkpoints_newest_first, load_trained_model
from gitnetic.models.positions import usable_positions
from gitnetic.models.pretrained import load_hf_model
from gitnetic.modules.objective import config_objective

__all__ = [
    "DecodingParams",
    "GenerateParams",
    "Generation",
    "GenerationModel",
    "Generator",
    "generate",
    "load_generation_model",
    "read_prompts",
]

logger = logging.getLogger(__name__)


@dataclass
class Generation:
    """One prompt's result: the generated text (the middle, when infilling) and token counts."""

    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float


class GenerationModel(NamedTuple):
    """A causal LM in eval mode on the CPU, and its tokenizer."""

    model: Any
    tokenizer: Any


def load_generation_model(
    model: str, config_path: str | None = None, tokenizer_path: str | None = None
) -> GenerationModel:
    """The causal LM of an exported folder or a training checkpoint, with its tokenizer."""
    path = Path(model)
    if not path.exists():
        raise DataError(
            f"--model {path} does not exist; pass a folder written by 'python -m gitnetic export' or a "
            "checkpoint written by 'python -m gitnetic train'"
        )
    if is_hf_model_folder(path):
        net, tokenizer = load_hf_model(path, "--model"), load_model_folder_tokenizer(path, "--model")
        rows = net.get_input_embeddings().num_embeddings
        if len(tokenizer) > rows:  # its token ids past the embedding would fail mid-generation
            raise DataError(
                f"--model {path}: its tokenizer has {len(tokenizer)} tokens but the model only {rows}; put "
                "the tokenizer the model was trained with in the folder (re-export it)"
            )
        return GenerationModel(net, tokenizer)
    if path.is_dir() and not checkpoints_newest_first(path):
        raise DataError(_not_a_model_folder(path))
    if not config_path or not tokenizer_path:
        raise ConfigError(
            f"--model {path} is a training checkpoint: also pass the --config_path and --tokenizer_path it "
            "was trained with (or generate from its export)"
        )
    trained = load_trained_model(path, config_path, tokenizer_path)
    name = type(trained.model).__name__
    if config_objective(trained.config) == "mlm" or "MaskedLM" in name:
        raise ConfigError(f"{name} is a masked LM; generate needs a causal LM")
    return GenerationModel(trained.model, trained.tokenizer)


def _not_a_model_folder(path: Path) -> str:
    """What a folder that is neither an exported model nor a checkpoint folder lacks, and the fix."""
    exported = any((path / name).is_file() for name in (*WEIGHT_FILES, "tokenizer.json"))
    if exported:  # weights or a tokenizer: an export (or save_pretrained) whose config.json is gone
        return (
            f"--model {path} is a folder without config.json; re-export it ('python -m gitnetic export') "
            "or copy the model's config.json into it"
        )
    return (
        f"--model {path} is a folder without config.json and without *.ckpt; pass a folder written by "
        "'python -m gitnetic export' or a checkpoint (folder) written by 'python -m gitnetic train'"
    )


def _read(path: str, flag: str) -> str:
    """The whole text of ``path`` (``-``: stdin), which must be UTF-8, as the corpus and training were.

    Anything readable that is not a folder is read: a named pipe is what bash's ``--prompt_file <(...)``
    passes. Bytes are decoded here rather than by a text-mode read so that a wrong encoding is a one-line
    error with the offending byte's offset."""
    if path == "-":
        stdin = getattr(sys.stdin, "buffer", None)
        data, name = (stdin.read() if stdin is not None else sys.stdin.read()), "(stdin)"
    else:
        p = Path(path)
        if p.is_dir():
            raise DataError(f"{flag} {p} is a directory; pass a file (or '-' for stdin)")
        if not p.exists():
            raise DataError(f"{flag} {p} does not exist; pass an existing file or '-' for stdin")
        data, name = p.read_bytes(), str(p)
    if isinstance(data, str):
        return data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{flag} {name} is not UTF-8 text (byte {data[exc.start]:#04x} at offset {exc.start}); "
            "convert it to UTF-8 (e.g. iconv -t utf-8)"
        ) from None
    return text.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text-mode reads gave


def read_prompts(params: GenerateParams) -> list[str] | list[tuple[str, str]]:
    """Plain prompts, or ``(prefix, suffix)`` pairs when infilling, from the flags (stdin as a fallback)."""
    if params.infill:
        if params.prompt or params.prompt_file:
            raise ConfigError(
                "give either --prompt/--prompt_file or the infill flags --prefix/--suffix/--infill_file"
            )
        if params.infill_file is not None:
            if params.prefix is not None or params.suffix is not None:
                raise ConfigError("give either --infill_file or --prefix/--suffix, not both")
            text = _read(params.infill_file, "--infill_file")
            count = text.count(params.cursor) if params.cursor else 0
            if count != 1:
                raise ConfigError(
                    f"{params.infill_file} must hold the cursor marker {params.cursor!r} exactly once "
                    f"(found {count}); mark where the middle goes, or set --cursor"
                )
            before, after = text.split(params.cursor)
            return [(before, after)]
        return [(params.prefix or "", params.suffix or "")]
    prompts = list(params.prompt)
    if params.prompt_file is not None:
        prompts.append(_read(params.prompt_file, "--prompt_file"))
    if not prompts:
        if sys.stdin is None or sys.stdin.isatty():
            raise ConfigError(
                "no prompt: pass --prompt TEXT, --prompt_file FILE, or pipe the prompt to stdin"
            )
        prompts.append(_read("-", "the prompt piped in"))
    return prompts


def _device(name: str) -> Any:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda but no CUDA GPU is visible; use --device cpu")
    return torch.device(name)


class Generator:
    """A loaded model + tokenizer that turns prompts into (streamed) generations."""

    def __init__(self, model: Any, tokenizer: Any, device: str = "auto") -> None:
        self.device = _device(device)
        self.model = model.to(self.device).eval()
        self.tokenizer = tokenizer
        self.encoder = HFEncoder(tokenizer)  # literal special-token strings stay text, as in preprocess
        self.eos_id = tokenizer.eos_token_id
        self.fim = fim_ids(tokenizer)
        self.context = usable_positions(model.config)

    def prompt_ids(self, prompt: str) -> list[int]:
        ids = self.encoder.encode(prompt).tolist()
        if not ids and self.eos_id is not None:
            ids = [int(self.eos_id)]  # every training document starts right after a </s>
        return ids

    def infill_ids(
        self, prefix: str, suffix: str, repo: str | None = None, path: str | None = None
    ) -> list[int]:
        """The infill prompt around ``prefix`` and ``suffix`` in the tokenizer's FIM format (docs/fim.md),
        after the repository name and file path in the family's repository-level format when given."""
        fim = self._need_fim()
        context: list[int] = []
        if repo is not None or path is not None:
            context = repo_context(fim, lambda text: self.encoder.encode(text).tolist(), repo, path)
            if fim.repo_name is None:
                logger.warning(
                    "generate: %s models have no repository-name tokens; --repo_name/--file_path not used",
                    fim.family,
                )
        head, lead = split_context(fim, context, path)  # StarCoder2: PATH\n starts the prefix
        prefix_ids, suffix_ids = lead + self.encoder.encode(prefix).tolist(), self.encode_suffix(suffix)
        return infill_prompt(fim, prefix_ids, suffix_ids, head)

    def encode_suffix(self, suffix: str) -> list[int]:
        """``suffix``'s ids as its family's infill prompts hold them: CodeLlama's without the dummy
        leading space a sentencepiece-style tokenizer puts before a text (Meta's ``encode_infilling``,
        transformers' CodeLlamaTokenizer), everyone else's as encoded."""
        ids = self.encoder.encode(suffix).tolist()
        if self.fim is None or self.fim.suffix_space or not suffix:
            return ids
        # encode behind a newline (which gets the space instead) and drop the newline's tokens, when
        # that cut is clean: the newline's own tokens come first, and the rest starts without the space
        # marker unless the suffix starts with a space
        head = self.encoder.encode("\n").tolist()
        joined = self.encoder.encode("\n" + suffix).tolist()
        rest = joined[len(head) :]
        clean = joined[: len(head)] == head and bool(rest)
        if clean and (suffix[0] == " " or not self.tokenizer.convert_ids_to_tokens(rest[0]).startswith("▁")):
            return rest
        return ids

    def infill_token_ids(
        self, prefix: Sequence[int], suffix: Sequence[int], context: Sequence[int] = ()
    ) -> list[int]:
        """The infill prompt around already-encoded prefix and suffix tokens (evaluate's infilling uses
        the held-out shards' own tokens, cut at token boundaries as FIM training cuts them), after
        ``context`` (a document's repository header)."""
        return infill_prompt(self._need_fim(), prefix, suffix, context)

    def _need_fim(self) -> FimIds:
        if self.fim is None:
            raise ConfigError(no_fim_tokens(self.tokenizer, "infilling"))
        return self.fim

    def run(
        self,
        ids: list[int],
        decoding: DecodingParams,
        out: TextIO | None = None,
        stop_ids: Sequence[int] = (),
    ) -> Generation:
        """Generate after ``ids``; streams the new text to ``out`` (if given) as it is produced.

        Generation ends at ``</s>`` or the FIM family's end-of-middle token (dropped from the result) or
        at any of ``stop_ids``, which is kept
        (evaluate's next-line completion stops at the tokens that hold a newline)."""
        if not ids:
            raise ConfigError("the prompt encodes to no tokens and the tokenizer has no </s> to start from")
        max_new = decoding.max_new_tokens
        if self.context is not None:
            if len(ids) >= self.context:
                raise ConfigError(
                    f"the prompt is {len(ids)} tokens but the model's context is {self.context}; shorten it"
                )
            if len(ids) + max_new > self.context:
                max_new = self.context - len(ids)
                logger.warning("generate: only %d new tokens fit in the model's context", max_new)
        kwargs: dict[str, Any] = {"max_new_tokens": max_new}
        if decoding.sampling:
            kwargs.update(
                do_sample=True, temperature=decoding.temperature, top_k=decoding.top_k, top_p=decoding.top_p
            )
        else:
            kwargs["do_sample"] = False
        ends = [int(i) for i in (self.eos_id, self.fim.eot if self.fim else None) if i is not None]
        stops = ends + [int(i) for i in stop_ids]  # (CodeLlama ends a middle with ▁<EOT>)
        if stops:
            kwargs["eos_token_id"] = stops if len(stops) > 1 else stops[0]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_id
        if pad is not None:
            kwargs["pad_token_id"] = int(pad)
        if out is not None:
            kwargs["streamer"] = _Streamer(self.tokenizer, out)
        input_ids = torch.tensor([ids], dtype=torch.long, device=self.device)
        torch.manual_seed(decoding.seed)
        start = time.perf_counter()
        with torch.inference_mode():
            result = self.model.generate(
                input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
            )
        seconds = time.perf_counter() - start
        new = result[0, len(ids) :].tolist()
        if new and new[-1] in ends:
            new = new[:-1]
        text = self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        return Generation(text=text, prompt_tokens=len(ids), new_tokens=len(new), seconds=seconds)


class _Streamer:
    """transformers' ``TextStreamer`` writing to any text stream instead of print()."""

    def __new__(cls, tokenizer: Any, out: TextIO) -> Any:
        from transformers import TextStreamer  # here: transformers' import costs seconds, streaming is rare

        class _To(TextStreamer):
            def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
                out.write(text)
                out.flush()

        return _To(tokenizer, skip_prompt=True, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def generate(params: GenerateParams, decoding: DecodingParams, out: TextIO | None = None) -> list[Generation]:
    """Load the model, read the prompts, generate each (streamed to ``out``, a newline after each)."""
    if not params.infill and (params.repo_name is not None or params.file_path is not None):
        raise ConfigError(
            "--repo_name and --file_path are for infilling: also pass --prefix/--suffix or --infill_file"
        )
    prompts = read_prompts(params)
    model, tokenizer = load_generation_model(params.model, params.config_path, params.tokenizer_path)
    generator = Generator(model, tokenizer, params.device)
    results = []
    for prompt in prompts:
        if params.infill:
            ids = generator.infill_ids(*prompt, repo=params.repo_name, path=params.file_path)
        else:
            ids = generator.prompt_ids(prompt)
        results.append(generator.run(ids, decoding, out))
        if out is not None:
            out.write("\n")
            out.flush()
    return results
