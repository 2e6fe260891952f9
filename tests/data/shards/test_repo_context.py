"""``preprocess --repo_context``: repository headers in the family's format before each document whose
repository and path the corpus knows, kept in front of the FIM layout in training (docs/fim.md)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from gitnetic.data.loading.fim import FimDataset, apply_fim, fim_rng
from gitnetic.data.shards.encoder import HFEncoder
from gitnetic.data.shards.indexed import IndexedDataset
from gitnetic.data.shards.repo_headers import git_repository_name
from gitnetic.data.tokenizer.fim_tokens import fim_ids, header_length, newline_mask, repo_context
from gitnetic.data.tokenizer.load import load_tokenizer
from tests.helpers import preprocess_shards
from tests.helpers.families import family_folder

CODE = "def add(a, b):\n    return a + b\n\n\nclass Counter:\n    def step(self, by=1):\n        return by\n"
# (record, the (repository, path) its header names, or None for no header)
RECORDS = [
    ({"text": CODE, "path": "pkg/a.py", "repository": "me/lib", "source": "data"}, ("me/lib", "pkg/a.py")),
    ({"text": CODE[:40], "path": "main.py", "source": "git:/src/tool.git@1a2b3c"}, ("tool", "main.py")),
    ({"text": CODE[8:], "path": "x/<file_sep>.py", "source": "app"}, ("app-repo", "x/<file_sep>.py")),
    ({"text": CODE, "path": "b.py", "source": "dir:/src/loose"}, None),  # no repository known
    ({"text": CODE, "path": "odd\nname.py", "repository": "me/lib", "source": "data"}, None),  # line break
    ({"text": CODE, "source": "data", "repository": "me/lib"}, None),  # no path
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("repo-corpus")
    with (root / "train.jsonl").open("w", encoding="utf-8") as fh:
        for record, _ in RECORDS:
            fh.write(json.dumps(record) + "\n")
    # a git source in a `sources:` list writes its name; stats.json keeps its label
    stats = {
        "sources": {"app": {"type": "git", "label": "git:../work/app-repo/@9f9f"}, "data": {"label": "x"}}
    }
    (root / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return root


def _docs(prefix: Path) -> list[list[int]]:
    data = IndexedDataset(str(prefix))
    return [np.asarray(data[i]).tolist() for i in range(len(data))]


def _run(tmp_path_factory, family: str, corpus: Path, *flags: str) -> tuple[Path, list[list[int]]]:
    folder = family_folder(tmp_path_factory, family)
    out = tmp_path_factory.mktemp(f"bin-{family}")
    preprocess_shards(folder, corpus, out, "--splits", "train", "--workers", "1", *flags)
    return out, _docs(out / "train")


def test_git_repository_name() -> None:
    assert git_repository_name("git:/src/mylib.git@1a2b") == "mylib"
    assert git_repository_name("git:../work/app/@1a2b") == "app"
    assert git_repository_name("git:/src/app/.git@1a2b") == "app"
    assert git_repository_name("git:C:\\src\\win@1a2b") == "win"
    for label in ("git:.@1a2b", "git:/@1a2b", "dir:/src/app", "stdlib:python3.11", "app", None):
        assert git_repository_name(label) is None


@pytest.mark.parametrize("family", ["starcoder2", "qwen2.5-coder"])
def test_shard_documents_start_with_the_family_header(tmp_path_factory, corpus, family) -> None:
    tok = load_tokenizer(family_folder(tmp_path_factory, family))
    ids, encoder = fim_ids(tok), HFEncoder(tok)
    encode = lambda text: encoder.encode(text).tolist()  # noqa: E731
    out, docs = _run(tmp_path_factory, family, corpus, "--repo_context", "true")
    assert len(docs) == len(RECORDS)
    for doc, (record, key) in zip(docs, RECORDS, strict=True):
        header = [] if key is None else repo_context(ids, encode, *key)
        assert doc == [*header, *encode(record["text"]), tok.eos_token_id]
    # written out from the published formats, token by token
    first = tok.convert_ids_to_tokens(docs[0])
    if family == "starcoder2":
        head = ["<repo_name>", *tok.convert_ids_to_tokens(encode("me/lib")), "<file_sep>"]
    else:
        head = ["<|repo_name|>", *tok.convert_ids_to_tokens(encode("me/lib\n")), "<|file_sep|>"]
    assert first[: len(head)] == head
    path_line = tok.convert_ids_to_tokens(encode("pkg/a.py\n"))
    assert first[len(head) : len(head) + len(path_line)] == path_line
    assert sum(t in (ids.repo_name, ids.file_sep) for t in docs[2]) == 2  # "<file_sep>" in a path is text


@pytest.mark.parametrize("family", ["starcoder2", "qwen2.5-coder"])
@pytest.mark.parametrize("spm", [0.0, 1.0])
def test_fim_keeps_the_header_before_the_sentinels(tmp_path_factory, corpus, family, spm) -> None:
    tok = load_tokenizer(family_folder(tmp_path_factory, family))
    ids, encoder = fim_ids(tok), HFEncoder(tok)
    encode = lambda text: encoder.encode(text).tolist()  # noqa: E731
    _, docs = _run(tmp_path_factory, family, corpus, "--repo_context", "true")
    eos = tok.eos_token_id
    newline = newline_mask(tok)
    sample = np.concatenate(docs).astype(np.int64)
    ds = FimDataset([sample], ids, eos, fim_rate=1.0, spm_rate=spm, seed=5, newline=newline)
    out = ds[0]
    ends = np.flatnonzero(out == eos) + 1
    for doc, piece, (_, key) in zip(docs, np.split(out, ends[:-1]), RECORDS, strict=True):
        if key is None:
            assert piece[0] == ids.prefix  # no header: FIM'd from its first token, as before
            continue
        full = repo_context(ids, encode, *key)
        # StarCoder2: `<repo_name>R<file_sep>` stays, `PATH\n` starts the FIM'd chunk (the paper's
        # `<file_sep><fim_prefix>filepath1\ncode1_pre`); Qwen2.5-Coder: `...<|file_sep|>PATH\n` stays
        kept = full if family == "qwen2.5-coder" else full[: full.index(ids.file_sep) + 1]
        assert header_length(np.asarray(doc), ids, newline) == len(kept)
        assert piece[: len(kept)].tolist() == kept
        assert piece[len(kept)] == ids.prefix
        if spm and ids.spm:
            assert piece[len(kept) + 1] == ids.suffix
        assert piece[-1] == eos and len(piece) == len(doc)
        assert piece[len(kept) :].tolist().count(ids.middle) == 1
        if not (spm and ids.spm):  # PSM: the prefix is where the FIM'd chunk began (StarCoder2: its path)
            prefix = piece[len(kept) + 1 : piece.tolist().index(ids.suffix)].tolist()
            assert prefix == doc[len(kept) : len(kept) + len(prefix)]
        if family == "qwen2.5-coder":
            assert ids.suffix in piece.tolist()  # PSM only: SPM draws still give PSM
    # a packed block that starts inside a header (after <repo_name>): what is left of it stays too
    kept = header_length(np.asarray(docs[0]), ids, newline)
    tail = apply_fim(np.asarray(docs[0][1:]), fim_rng(1, 0), ids, eos, 1.0, spm, newline)
    assert tail[: kept - 1].tolist() == docs[0][1:kept] and tail[kept - 1] == ids.prefix


def test_off_and_without_repository_tokens_the_shards_are_unchanged(tmp_path_factory, corpus, caplog) -> None:
    off, docs = _run(tmp_path_factory, "gpt2", corpus)
    tok = load_tokenizer(family_folder(tmp_path_factory, "gpt2"))
    encoder = HFEncoder(tok)
    assert docs == [[*encoder.encode(r["text"]).tolist(), tok.eos_token_id] for r, _ in RECORDS]
    # StarCoder's names without StarCoder2's repository tokens: one warning, the same bytes
    with caplog.at_level(logging.WARNING):
        on, _ = _run(tmp_path_factory, "gpt2", corpus, "--repo_context", "true")
    warnings = [r.getMessage() for r in caplog.records if "--repo_context not used" in r.getMessage()]
    assert len(warnings) == 1 and "starcoder family" in warnings[0]
    for ext in ("bin", "idx"):
        assert (on / f"train.{ext}").read_bytes() == (off / f"train.{ext}").read_bytes()
    # a family with them, the option off: the text alone
    tok2 = load_tokenizer(family_folder(tmp_path_factory, "starcoder2"))
    _, plain = _run(tmp_path_factory, "starcoder2", corpus)
    encoder2 = HFEncoder(tok2)
    assert plain == [[*encoder2.encode(r["text"]).tolist(), tok2.eos_token_id] for r, _ in RECORDS]


def test_training_batches_keep_qwen_headers(tmp_path_factory, corpus) -> None:
    """The data module finds Qwen2.5-Coder's headers (which end at the path's newline) by itself."""
    from gitnetic.modules.transformer_datamodule import TransformerDataModule

    tok = load_tokenizer(family_folder(tmp_path_factory, "qwen2.5-coder"))
    ids = fim_ids(tok)
    out, docs = _run(tmp_path_factory, "qwen2.5-coder", corpus, "--repo_context", "true")
    longest = max(map(len, docs))
    params = TransformerDataModule.Params(
        train_data_prefix=str(out / "train"), batch_size=1, max_length=longest, fim_rate=1.0, seed=3
    )
    dm = TransformerDataModule(tokenizer=tok, params=params)
    dm.setup("fit")
    rows = [row for batch in dm.train_dataloader() for row in batch["input_ids"].tolist()]
    headers = {tuple(doc[: header_length(np.asarray(doc), ids, newline_mask(tok))]) for doc in docs}
    starts = [row[: row.index(ids.prefix)] for row in rows]
    assert len(rows) == len(docs) and {tuple(s) for s in starts} == headers
    assert sum(1 for s in starts if s) == 3


def test_completion_metrics_skip_header_lines_and_prompt_it_before_the_layout(
    tmp_path_factory, corpus, monkeypatch
) -> None:
    """evaluate on repo-context test shards: no line of a header is a completion target, and the infill
    prompt holds the header before <|fim_prefix|>, as training does."""
    from transformers import AutoModelForCausalLM

    from gitnetic.evaluation.completion import completion_metrics, newline_token_mask, sample_lines
    from gitnetic.inference.generate import Generator

    folder = family_folder(tmp_path_factory, "qwen2.5-coder")
    tok = load_tokenizer(folder)
    ids = fim_ids(tok)
    out, docs = _run(tmp_path_factory, "qwen2.5-coder", corpus, "--repo_context", "true")
    data = IndexedDataset(str(out / "train"))
    newline = newline_token_mask(tok, len(tok))
    heads = [header_length(np.asarray(doc), ids, newline) for doc in docs]
    every = sample_lines(data, tok, newline, 1000, seed=0)
    lines = sample_lines(data, tok, newline, 1000, seed=0, fim=ids)
    assert any(line.start < heads[line.document] for line in every)  # the path line, without fim
    assert lines and all(line.start >= heads[line.document] for line in lines)
    assert len(lines) == len(every) - sum(1 for line in every if line.start < heads[line.document])

    prompts: list[list[int]] = []
    real_run = Generator.run

    def run(self, prompt, *args, **kwargs):
        prompts.append(list(prompt))
        return real_run(self, prompt, *args, **kwargs)

    monkeypatch.setattr(Generator, "run", run)
    model = AutoModelForCausalLM.from_pretrained(folder)
    metrics = completion_metrics(model, tok, data, samples=len(lines), seed=0)
    assert metrics["infill_samples"] == len(lines)
    infill = [p for p in prompts if ids.prefix in p]
    assert len(infill) == len(lines)
    for prompt in infill:
        head = prompt[: prompt.index(ids.prefix)]
        assert tuple(head) in {tuple(doc[:h]) for doc, h in zip(docs, heads, strict=True)}
        assert ids.repo_name not in prompt[len(head) :] and ids.file_sep not in prompt[len(head) :]
    assert any(head for head in (p[: p.index(ids.prefix)] for p in infill))
