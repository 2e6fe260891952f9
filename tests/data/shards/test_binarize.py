"""``gitnetic preprocess`` (gitnetic/data/shards/binarize.py behind its thin CLI): JSONL splits -> MMIDIDX shards
that equal a direct HF encoding, token for token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gitnetic.cli import preprocess as pp
from gitnetic.common.errors import ConfigError, DataError
from gitnetic.data import source_routing
from gitnetic.data.corpus.splits import SPLITS
from gitnetic.data.shards import pieces as pieces_mod
from gitnetic.data.shards import writer
from gitnetic.data.shards.encoder import HFEncoder, TiktokenEncoder, build_encoder
from gitnetic.data.shards.indexed import IndexedDataset
from gitnetic.data.shards.writer import Encoding, ShardJob, write_shard
from gitnetic.data.tokenizer.load import load_backend_tokenizer, load_tokenizer
from tests.helpers import stdlib_json_files

REPO = Path(__file__).resolve().parents[3]
EOS = 2


def _stdlib_docs(count: int) -> list[str]:
    texts = [p.read_text("utf-8") for p in stdlib_json_files()]
    extra = [
        'END = "</s>"  # a literal separator string in code\nSTART = "<s>"; PAD = "<pad>"\n',
        "",  # an empty document still gets its </s>
        "def f():\r\n\treturn '\u03c0 \U0001f600'\r\n",
        "x" * 5000,
    ]
    docs = (texts + extra) * (count // (len(texts) + len(extra)) + 1)
    return docs[:count]


def _write_jsonl(path: Path, texts: list[str], blank_every: int = 7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for i, text in enumerate(texts):
            fh.write(json.dumps({"text": text, "path": f"f{i}.py", "source": "test"}) + "\n")
            if i % blank_every == 3:
                fh.write("\n")  # blank lines are skipped, as by gitnetic.data.jsonl
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    root = tmp_path_factory.mktemp("corpus")
    splits = {"train": _stdlib_docs(40), "valid": _stdlib_docs(9)[::-1], "test": _stdlib_docs(9)[4:7]}
    for name, texts in splits.items():
        _write_jsonl(root / f"{name}.jsonl", texts)
    return root, splits


@pytest.fixture(scope="module")
def expected(tiny_tokenizer: Path, corpus) -> dict[str, list[list[int]]]:
    """Direct HF encoding (special strings kept as text) + </s>: what every shard must hold."""
    tok = load_tokenizer(tiny_tokenizer)
    out = {}
    for name, texts in corpus[1].items():
        ids = tok(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"] if texts else []
        out[name] = [list(x) + [EOS] for x in ids]
    assert tok.convert_tokens_to_ids("</s>") == EOS
    return out


def _read(prefix: Path | str) -> list[list[int]]:
    return [x.tolist() for x in IndexedDataset(prefix)]


def _run(tok: Path, corpus_dir: Path, out: Path, *extra: str) -> None:
    argv = ["--tokenizer_path", str(tok), "--input_dir", str(corpus_dir), "--output_dir", str(out), *extra]
    assert pp.main(argv) == 0


@pytest.mark.parametrize("dtype", ["auto", "int32"])
def test_binarize_equals_direct_hf_encoding(
    tmp_path: Path, tiny_tokenizer: Path, corpus, expected, dtype
) -> None:
    _run(tiny_tokenizer, corpus[0], tmp_path, "--dtype", dtype, "--batch_size", "5", "--workers", "2")
    for split, ids in expected.items():
        ds = IndexedDataset(tmp_path / split)
        assert ds.dtype == (np.uint16 if dtype == "auto" else np.int32)
        assert _read(tmp_path / split) == ids
        literal = corpus[1][split].index(next(t for t in corpus[1][split] if "</s>" in t))
        assert ds[literal].tolist().count(EOS) == 1 and ds[literal][-1] == EOS  # only the appended separator


def test_shards_concatenate_to_the_single_run(tmp_path: Path, tiny_tokenizer: Path, corpus, expected) -> None:
    _run(tiny_tokenizer, corpus[0], tmp_path / "one", "--splits", "train")
    _run(tiny_tokenizer, corpus[0], tmp_path / "all", "--splits", "train", "--num_shards", "3")
    for i in range(3):  # the Snakemake fan-out: one job per shard
        _run(
            tiny_tokenizer,
            corpus[0],
            tmp_path / "fan",
            "--splits",
            "train",
            "--num_shards",
            "3",
            "--shard_index",
            str(i),
        )
    assert sorted(os.listdir(tmp_path / "fan")) == [
        f"train-0000{i}-of-00003.{e}" for i in range(3) for e in ("bin", "idx")
    ]
    single = _read(tmp_path / "one" / "train")
    assert single == expected["train"]
    parts = [_read(tmp_path / "fan" / f"train-0000{i}-of-00003") for i in range(3)]
    assert all(parts) and sum(parts, []) == single  # every shard non-empty, concatenation == single run
    assert _read(tmp_path / "all" / "train") == single  # the reader opens the set by prefix
    # more shards than documents: some shards are empty, the concatenation is still the same
    _run(tiny_tokenizer, corpus[0], tmp_path / "many", "--splits", "test", "--num_shards", "7")
    sizes = [len(IndexedDataset(tmp_path / "many" / f"test-{i:05d}-of-00007")) for i in range(7)]
    assert 0 in sizes and _read(tmp_path / "many" / "test") == expected["test"]
    # a Snakemake job with num_shards: 1 writes the shard name it declares, and the prefix still reads
    _run(
        tiny_tokenizer,
        corpus[0],
        tmp_path / "job1",
        "--splits",
        "train",
        "--num_shards",
        "1",
        "--shard_index",
        "0",
    )
    assert sorted(os.listdir(tmp_path / "job1")) == ["train-00000-of-00001.bin", "train-00000-of-00001.idx"]
    assert _read(tmp_path / "job1" / "train") == single
    # a full single-shard rerun replaces the shard set instead of leaving two versions of the split
    _run(tiny_tokenizer, corpus[0], tmp_path / "all", "--splits", "train")
    assert sorted(os.listdir(tmp_path / "all")) == ["train.bin", "train.idx"]


def test_cli_subprocess_with_params_yaml(tmp_path: Path, tiny_tokenizer: Path, corpus, expected) -> None:
    params = tmp_path / "params.yaml"
    params.write_text(
        "preprocess:\n"
        f"  tokenizer_path: {tiny_tokenizer}\n  input_dir: {corpus[0]}\n  output_dir: {tmp_path / 'bin'}\n"
        "  splits: [valid, test]\n  num_shards: 2\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "gitnetic", "preprocess", "--config", f"{params}:preprocess"]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "9 documents" in done.stdout and "Mtok/s" in done.stdout
    assert _read(tmp_path / "bin" / "valid") == expected["valid"]
    assert _read(tmp_path / "bin" / "test") == expected["test"]
    bad = subprocess.run(
        [*cmd, "--splits", "nope"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines() == [
        f"gitnetic preprocess: error: corpus split {corpus[0] / 'nope.jsonl'} does not exist; "
        "run 'python -m gitnetic corpus' first or fix the path"
    ]


def test_single_file_form(tmp_path: Path, tiny_tokenizer: Path, corpus, expected) -> None:
    pp.main(["--tokenizer_path", str(tiny_tokenizer), "--input", str(corpus[0] / "valid.jsonl"),
             "--output_prefix", str(tmp_path / "x" / "v")])  # fmt: skip
    assert _read(tmp_path / "x" / "v") == expected["valid"]
    with pytest.raises(ConfigError, match="--input and --output_prefix go together"):
        pp.main(["--tokenizer_path", str(tiny_tokenizer), "--input", str(corpus[0] / "valid.jsonl")])


def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path: Path, tiny_tokenizer: Path) -> None:
    lines = [json.dumps({"text": f"x = {i}\n"}) for i in range(30)]
    lines[17] = '{"text": "unterminated'
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "train.jsonl").write_text("\n".join(lines) + "\n")
    args = ["--tokenizer_path", str(tiny_tokenizer), "--input_dir", str(tmp_path / "in"), "--splits", "train",
            "--output_dir", str(tmp_path / "out"), "--batch_size", "4"]  # fmt: skip
    with pytest.raises(DataError, match=r"train\.jsonl:18 is not valid JSON"):
        pp.main(args)
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []  # no partial or temp files
    (tmp_path / "in" / "train.jsonl").write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl:2 is not valid UTF-8"):
        pp.main(args)
    (tmp_path / "in" / "train.jsonl").write_text('{"text": "ok"}\n{"text": "ok"}\n{"text": "a\\ud800"}\n')
    with pytest.raises(DataError, match=r"train\.jsonl:3 has text with a lone surrogate"):
        pp.main(args)
    (tmp_path / "in" / "train.jsonl").write_text('{"path": "a.py"}\n')
    with pytest.raises(DataError, match=r'train\.jsonl:1 has no string "text" field'):
        pp.main(args)
    (tmp_path / "in" / "train.jsonl").write_text("\n\n")
    with pytest.raises(DataError, match="has no documents"):
        pp.main(args)
    (tmp_path / "in" / "valid.jsonl").write_text("")
    with pytest.raises(DataError, match=r"valid\.jsonl has no documents: .*corpus\.splits\.valid_ratio is 0"):
        pp.main([*args[:-4], "--splits", "valid", *args[-2:]])
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
    with pytest.raises(ConfigError, match="--shard_index 3 is out of range"):
        pp.main([*args, "--num_shards", "3", "--shard_index", "3"])
    (tmp_path / "in" / "train.jsonl").write_text('{"text": "ok"}\n')
    with pytest.raises(DataError, match="no tokenizer at"):
        pp.main([*args[2:], "--tokenizer_path", str(tmp_path / "missing")])


def test_spot_check_mismatch_redoes_the_shard_with_hf(
    tmp_path: Path, tiny_tokenizer: Path, corpus, expected
) -> None:
    """The safety net: if tiktoken ever disagrees with HF, the shard is rewritten with HF ids."""
    tokenizer = load_backend_tokenizer(tiny_tokenizer)
    fast = build_encoder(tokenizer, "tiktoken", num_threads=1)
    assert isinstance(fast, TiktokenEncoder)

    class Drifting(TiktokenEncoder):
        def encode(self, text: str) -> np.ndarray:
            ids = super().encode(text)
            return ids[::-1].copy() if len(ids) > 3 else ids  # wrong ids for any longer document

    wrong = Drifting(fast.encoding, fast.vocab_size)
    path = corpus[0] / "train.jsonl"
    encoding = Encoding(wrong, np.dtype(np.uint16), EOS, workers=2, batch_size=4, verifier=HFEncoder(tokenizer),
                        verify_every=5)  # fmt: skip
    (stats,) = write_shard(ShardJob(path, [str(tmp_path / "t")]), encoding)
    assert stats.encoder == "hf" and _read(tmp_path / "t") == expected["train"]


# ------------------------------------------------------------------------------------- --by_source
def _multi_source_corpus(root: Path) -> dict[str, dict[str, list[str]]]:
    """Splits whose records come from three sources, interleaved; stats.json as the corpus stage writes it.

    Source ``empty`` has no document in any split; ``c`` none in valid (its prefix there is empty)."""
    docs = _stdlib_docs(30)
    names = {"train": ["a", "b", "c"], "valid": ["a", "b"], "test": ["b", "c", "a"]}
    by_split: dict[str, dict[str, list[str]]] = {}
    root.mkdir(parents=True, exist_ok=True)
    for split, order in names.items():
        routed: dict[str, list[str]] = {n: [] for n in ("a", "b", "c", "empty")}
        with (root / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for i, text in enumerate(docs[: 9 if split == "train" else 5]):
                source = order[i % len(order)]
                fh.write(json.dumps({"text": text, "path": f"{split}{i}.py", "source": source}) + "\n")
                routed[source].append(text)
        by_split[split] = routed
    stats = {"sources": {n: {"type": "dir", "label": f"dir:{n}"} for n in ("a", "b", "c", "empty")}}
    (root / "stats.json").write_text(json.dumps(stats))
    return by_split


def test_by_source_writes_one_prefix_per_source(tmp_path: Path, tiny_tokenizer: Path) -> None:
    """Each document lands in {split}-{source}, in corpus order; groups merge sources; fan-out agrees."""
    by_split = _multi_source_corpus(tmp_path / "in")
    tok = load_tokenizer(tiny_tokenizer)

    def encoded(texts: list[str]) -> list[list[int]]:
        ids = tok(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"] if texts else []
        return [list(x) + [EOS] for x in ids]

    _run(tiny_tokenizer, tmp_path / "in", tmp_path / "one", "--by_source", "--batch_size", "2")
    names = sorted(os.listdir(tmp_path / "one"))
    assert names == sorted(
        f"{s}-{n}.{e}" for s in SPLITS for n in ("a", "b", "c", "empty") for e in ("bin", "idx")
    )
    for split, routed in by_split.items():
        for source, texts in routed.items():
            assert _read(tmp_path / "one" / f"{split}-{source}") == encoded(texts), (split, source)
    assert (
        len(IndexedDataset(tmp_path / "one" / "valid-c")) == 0
    )  # declared, empty: a blend can still name it

    # groups: a and c under "code"; b and empty keep their own prefixes
    _run(tiny_tokenizer, tmp_path / "in", tmp_path / "grp", "--by_source", "--source_groups", "code=a,c",
         "--splits", "test", "--num_shards", "2")  # fmt: skip
    assert sorted(os.listdir(tmp_path / "grp")) == sorted(
        f"test-{g}-0000{i}-of-00002.{e}"
        for g in ("code", "b", "empty")
        for i in range(2)
        for e in ("bin", "idx")
    )
    test = by_split["test"]
    code_in_order = [t for t in _stdlib_docs(30)[:5] if t in test["a"] + test["c"]]
    assert _read(tmp_path / "grp" / "test-code") == encoded(code_in_order)
    assert _read(tmp_path / "grp" / "test-b") == encoded(test["b"])
    for i in range(2):  # the Snakemake fan-out writes byte-identical shards of every group
        _run(tiny_tokenizer, tmp_path / "in", tmp_path / "fan", "--by_source", "--source_groups", "code=a,c",
             "--splits", "test", "--num_shards", "2", "--shard_index", str(i))  # fmt: skip
    for name in os.listdir(tmp_path / "grp"):
        assert (tmp_path / "fan" / name).read_bytes() == (tmp_path / "grp" / name).read_bytes(), name

    # a split-wide prefix of an earlier run is removed, so train cannot read stale data by the old name
    _run(tiny_tokenizer, tmp_path / "in", tmp_path / "switch", "--splits", "valid")
    _run(tiny_tokenizer, tmp_path / "in", tmp_path / "switch", "--splits", "valid", "--by_source")
    assert not (tmp_path / "switch" / "valid.idx").exists() and (tmp_path / "switch" / "valid-a.idx").exists()
    # and back: turning --by_source off removes the corpus sources' prefixes; a file of the user's own
    # in the same folder (not a corpus source's name) is left alone
    (tmp_path / "switch" / "valid-mine.idx").write_bytes((tmp_path / "switch" / "valid-a.idx").read_bytes())
    _run(tiny_tokenizer, tmp_path / "in", tmp_path / "switch", "--splits", "valid")
    assert sorted(os.listdir(tmp_path / "switch")) == ["valid-mine.idx", "valid.bin", "valid.idx"]

    # --input form: OUTPUT_PREFIX-{source}, names from the stats.json beside the file
    pp.main(["--tokenizer_path", str(tiny_tokenizer), "--input", str(tmp_path / "in" / "valid.jsonl"),
             "--output_prefix", str(tmp_path / "x" / "v"), "--by_source"])  # fmt: skip
    assert _read(tmp_path / "x" / "v-b") == encoded(by_split["valid"]["b"])


def test_by_source_single_source_labels_and_errors(
    tmp_path: Path, tiny_tokenizer: Path, tiny_corpus_jsonl: Path
) -> None:
    # a corpus written with the single-source keys: records carry the label, stats.json maps it to the name
    stats = json.loads((tiny_corpus_jsonl / "stats.json").read_text())
    (name,) = stats["sources"]
    _run(tiny_tokenizer, tiny_corpus_jsonl, tmp_path / "bin", "--by_source", "--splits", "valid")
    _run(tiny_tokenizer, tiny_corpus_jsonl, tmp_path / "all", "--splits", "valid")
    assert _read(tmp_path / "bin" / f"valid-{name}") == _read(tmp_path / "all" / "valid")

    _multi_source_corpus(tmp_path / "in")
    args = ["--tokenizer_path", str(tiny_tokenizer), "--input_dir", str(tmp_path / "in"),
            "--output_dir", str(tmp_path / "out"), "--splits", "train"]  # fmt: skip
    with pytest.raises(ConfigError, match="--source_groups applies to --by_source"):
        pp.main([*args, "--source_groups", "code=a"])
    with pytest.raises(
        ConfigError, match="'code' names 'nope', which is not a corpus source; the sources are a, b, c, empty"
    ):
        pp.main([*args, "--by_source", "--source_groups", "code=a,nope"])
    with pytest.raises(ConfigError, match="source 'a' is in two groups"):
        pp.main([*args, "--by_source", "--source_groups", "x=a", "y=a,b"])
    with pytest.raises(ConfigError, match="must be GROUP=SOURCE,SOURCE"):
        pp.main([*args, "--by_source", "--source_groups", "a,b"])
    with pytest.raises(ConfigError, match="group 'b' has the name of another source"):
        pp.main([*args, "--by_source", "--source_groups", "b=a"])
    # a record whose source stats.json does not know: one line, nothing written
    with (tmp_path / "in" / "train.jsonl").open("a") as fh:
        fh.write(json.dumps({"text": "x = 1\n", "source": "stray"}) + "\n")
    with pytest.raises(
        DataError, match=r"train\.jsonl:10 has source 'stray', which the corpus stats\.json does not list"
    ):
        pp.main([*args, "--by_source"])
    assert not (tmp_path / "out").exists() or os.listdir(tmp_path / "out") == []
    (tmp_path / "in" / "stats.json").unlink()
    with pytest.raises(DataError, match=r"--by_source needs the corpus stage's .*stats\.json"):
        pp.main([*args, "--by_source"])
    # params.yaml may give the groups as a mapping
    assert source_routing.parse_source_groups({"code": ["a", "c"], "log": "b"}) == {
        "code": ["a", "c"],
        "log": ["b"],
    }


# ------------------------------------------------------------------------------------ long documents
def _files(folder: Path) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}


@pytest.mark.parametrize("kind", ["auto", "hf"])
def test_documents_cut_in_pieces_give_byte_identical_shards(
    tmp_path: Path, tiny_tokenizer: Path, corpus, expected, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With pieces of 64 characters nearly every document is encoded in pieces: the shards are byte for
    byte those of whole-document encoding (the default piece size leaves these documents whole)."""
    _run(tiny_tokenizer, corpus[0], tmp_path / "whole", "--encoder", kind, "--verify_every", "1")
    cut: list[int] = []
    real_pieces = pieces_mod.pieces

    def counting(text: str, piece_chars: int = pieces_mod.PIECE_CHARS):
        parts = list(real_pieces(text, piece_chars))
        cut.append(len(parts))
        return iter(parts)

    monkeypatch.setattr(pieces_mod, "PIECE_CHARS", 64)
    monkeypatch.setattr(pieces_mod, "pieces", counting)
    _run(tiny_tokenizer, corpus[0], tmp_path / "cut", "--encoder", kind, "--verify_every", "1")
    assert sum(n > 1 for n in cut) >= 30  # the pieces path really ran, on most of the 52 documents
    assert _files(tmp_path / "cut") == _files(tmp_path / "whole")
    for split, ids in expected.items():
        assert _read(tmp_path / "cut" / split) == ids


def test_a_long_document_is_encoded_and_checked_in_bounded_calls(
    tmp_path: Path, tiny_tokenizer: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One document of ~290k characters between short ones: the encoders only ever see pieces of it,
    the spot check reads only its first piece, the ids are the whole document's, and a wrong id in the
    first piece still sends the shard to HF."""
    monkeypatch.setattr(pieces_mod, "PIECE_CHARS", 2048)
    docs = _stdlib_docs(12)
    texts = [docs[0], "\n".join(docs) * 3, docs[1]]
    path = _write_jsonl(tmp_path / "long.jsonl", texts)
    tokenizer = load_backend_tokenizer(tiny_tokenizer)
    want = [ids.tolist() + [EOS] for ids in HFEncoder(tokenizer, piece_chars=10**9).encode_batch(texts)]
    seen: dict[str, list[int]] = {"fast": [], "check": []}

    class Recording(TiktokenEncoder):
        def encode(self, text: str) -> np.ndarray:  # what tiktoken itself is given, text or piece
            seen["fast"].append(len(text))
            ids = super().encode(text)
            return ids if ids.size < 5 or not self.drift else ids[::-1].copy()

    class Checking(HFEncoder):
        def _encode_whole(self, texts: list[str]) -> list[np.ndarray]:
            seen["check"].append(sum(map(len, texts)))
            return super()._encode_whole(texts)

    fast = build_encoder(tokenizer, "tiktoken", num_threads=1)
    for drift in (False, True):
        seen["fast"].clear(), seen["check"].clear()
        encoder = Recording(fast.encoding, fast.vocab_size)
        encoder.drift = drift
        encoding = Encoding(encoder, np.dtype(np.uint16), EOS, workers=2, batch_size=2,
                            verifier=Checking(tokenizer), verify_every=1)  # fmt: skip
        (stats,) = write_shard(ShardJob(path, [str(tmp_path / f"t{drift}")]), encoding)
        assert _read(tmp_path / f"t{drift}") == want
        assert stats.encoder == ("hf" if drift else "tiktoken")
        if not drift:  # pieces only (of the 14k-character documents too); one holds a 5000-character "xx..."
            assert 5000 < max(seen["fast"]) <= 2048 + 5000 + 100 < len(texts[1]) // 10
            assert max(seen["check"]) <= 2 * 2048  # a batch of 2: each document's first piece
            assert len(seen["fast"]) > 30 and len(seen["check"]) == 2  # 2 batches checked, pieces encoded


def test_huge_batches_do_not_queue_up(
    tmp_path: Path, tiny_tokenizer: Path, expected, corpus, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Beyond one batch per worker, the queue of encoded-but-unwritten batches is bounded by bytes: with
    1 KiB batch budget and documents of several KiB, never more than the workers' batches wait."""
    monkeypatch.setattr(writer, "_BATCH_BYTES", 1024)
    submitted: list[int] = []
    written = [0]
    real_iter, real_add = writer._iter_batches, writer._add_batch
    waiting: list[int] = []

    def iter_batches(*args):
        for lines, offsets in real_iter(*args):
            waiting.append(len(submitted) - written[0])  # pending when the next batch is read
            submitted.append(sum(map(len, lines)))
            yield lines, offsets

    def add_batch(*args):
        written[0] += 1
        real_add(*args)

    monkeypatch.setattr(writer, "_iter_batches", iter_batches)
    monkeypatch.setattr(writer, "_add_batch", add_batch)
    _run(tiny_tokenizer, corpus[0], tmp_path, "--splits", "train", "--workers", "2", "--batch_size", "64")
    assert _read(tmp_path / "train") == expected["train"]
    big = sum(n > 4 * 2 * 1024 for n in submitted)  # batches beyond the whole byte budget on their own
    assert big >= 10 and len(submitted) > 10
    assert max(waiting) <= 2  # at most one batch per worker in flight (the count limit alone allows 8)
