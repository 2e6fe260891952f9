"""Fill-in-the-middle: the tokenizer option, the per-document transform and its wiring into training samples."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gitnetic.common.errors import ConfigError
from gitnetic.data.loading.fim import FIM_TOKENS, FimDataset, FimIds, apply_fim, fim_ids, fim_rng, permute
from gitnetic.data.tokenizer.load import load_tokenizer
from tests.helpers import write_shard

IDS = FimIds(prefix=5, middle=6, suffix=7, pad=8)
EOS = 2
SENTINELS = {IDS.prefix, IDS.middle, IDS.suffix}


def test_tokenizer_option_adds_starcoder_fim_tokens_and_literals_stay_text(fim_tokenizer, tiny_tokenizer):
    from gitnetic.data.shards.encoder import HFEncoder

    tok = load_tokenizer(fim_tokenizer)
    assert fim_ids(tok) == FimIds(prefix=5, middle=6, suffix=7, pad=8)
    assert [tok.convert_ids_to_tokens(i) for i in range(9)] == [
        "<s>",
        "<pad>",
        "</s>",
        "<unk>",
        "<mask>",
        *FIM_TOKENS,
    ]
    assert set(range(9)) <= set(tok.all_special_ids)
    # the default tokenizer is unchanged: no FIM tokens
    assert fim_ids(load_tokenizer(tiny_tokenizer)) is None
    saved = json.loads((fim_tokenizer / "gitnetic_tokenizer.json").read_text())
    assert saved["fim_tokens"] is True
    # code that mentions the tokens encodes them as ordinary text and decodes back exactly
    text = 'FIM = "<fim_prefix>x<fim_suffix>y<fim_middle>"  # </s>\n'
    ids = HFEncoder(tok).encode(text).tolist()
    assert not set(ids) & set(range(9))
    assert tok.decode(ids) == text


def test_permute_layouts_are_exact() -> None:
    doc = np.arange(100, 112)  # 12 content tokens; the last 3 make room for the sentinels
    psm = permute(doc, IDS, (2, 5), spm=False)
    assert psm.tolist() == [5, 100, 101, 7, *range(105, 109), 6, 102, 103, 104]
    spm = permute(doc, IDS, (2, 5), spm=True)
    assert spm.tolist() == [5, 7, *range(105, 109), 6, 100, 101, 102, 103, 104]
    assert len(psm) == len(spm) == len(doc)
    empty_middle = permute(doc, IDS, (4, 4), spm=False)
    assert empty_middle.tolist() == [5, *range(100, 104), 7, *range(104, 109), 6]
    with pytest.raises(ValueError):
        permute(doc, IDS, (3, 10), spm=False)


def _docs(rng: np.random.Generator, count: int, longest: int = 60) -> list[np.ndarray]:
    """Documents of unique token values (so 'appears exactly once' is checkable), each ending in </s>."""
    docs, next_id = [], 1000
    for _ in range(count):
        n = int(rng.integers(1, longest))
        docs.append(np.append(np.arange(next_id, next_id + n), EOS))
        next_id += n
    return docs


def _pieces(sample: np.ndarray) -> list[np.ndarray]:
    ends = (np.flatnonzero(sample == EOS) + 1).tolist()
    return [p for p in np.split(sample, ends) if len(p)]


def test_apply_fim_keeps_lengths_and_every_document_token_once() -> None:
    rng = np.random.default_rng(0)
    sample = np.concatenate(_docs(rng, 200))[:-7]  # the last document is cut, as at a block boundary
    out = apply_fim(sample, fim_rng(1, 0), IDS, EOS, fim_rate=0.5, spm_rate=0.5)
    assert out.shape == sample.shape and out.dtype == sample.dtype
    assert (np.flatnonzero(out == EOS) == np.flatnonzero(sample == EOS)).all()  # </s> stay in place
    fimmed = 0
    for before, after in zip(_pieces(sample), _pieces(out), strict=True):
        content = before[before != EOS]
        if not set(after.tolist()) & SENTINELS:
            assert (before == after).all()
            continue
        fimmed += 1
        body = after[~np.isin(after, [*SENTINELS, EOS])]
        # every token of the document but the 3 displaced by the sentinels appears exactly once
        assert sorted(body.tolist()) == content[: len(content) - 3].tolist()
        assert [int(t) for t in after if t in SENTINELS].count(IDS.middle) == 1
    assert fimmed > 50


def test_rate_and_spm_share_within_tolerance() -> None:
    # long documents: a PSM sample with an empty prefix reads exactly like an SPM one, rare here
    docs = _docs(np.random.default_rng(1), 3000, longest=800)
    sample = np.concatenate(docs).astype(np.int64)
    out = apply_fim(sample, fim_rng(7, 3), IDS, EOS, fim_rate=0.3, spm_rate=0.25)
    eligible = fimmed = spm = 0
    for piece in _pieces(out):
        if len(piece) - 1 <= 3:
            continue  # too short to hold the sentinels: never transformed
        eligible += 1
        if piece[0] == IDS.prefix:
            fimmed += 1
            spm += int(piece[1] == IDS.suffix)
    assert abs(fimmed / eligible - 0.3) < 0.035, (fimmed, eligible)
    assert abs(spm / fimmed - 0.25) < 0.045, (spm, fimmed)


def test_rate_zero_is_the_identity_and_rate_one_transforms_every_long_document() -> None:
    sample = np.concatenate(_docs(np.random.default_rng(2), 50))
    assert (apply_fim(sample, fim_rng(0, 0), IDS, EOS, 0.0, 0.5) == sample).all()
    out = apply_fim(sample, fim_rng(0, 0), IDS, EOS, 1.0, 0.0)
    for piece in _pieces(out):
        assert (piece[0] == IDS.prefix) == (len(piece) - 1 > 3)


def test_fim_dataset_is_a_pure_function_of_seed_and_index() -> None:
    from gitnetic.data.loading.batching import PackedBlocks

    docs = _docs(np.random.default_rng(3), 300)
    blocks = PackedBlocks(docs, 64)
    a = FimDataset(blocks, IDS, EOS, 0.5, 0.5, seed=11)
    b = FimDataset(blocks, IDS, EOS, 0.5, 0.5, seed=11)
    other = FimDataset(blocks, IDS, EOS, 0.5, 0.5, seed=12)
    order = np.random.default_rng(0).permutation(len(blocks))
    forward = [a[i] for i in range(len(blocks))]
    shuffled = {int(i): b[int(i)] for i in order}  # another access order (a resumed or another rank)
    assert all((forward[i] == shuffled[i]).all() for i in range(len(blocks)))
    assert any((forward[i] != other[i]).any() for i in range(len(blocks)))
    assert all(len(forward[i]) == len(blocks[i]) for i in range(len(blocks)))
    with pytest.raises(ConfigError):
        FimDataset(blocks, IDS, EOS, 1.5, 0.5, seed=0)


@pytest.mark.parametrize("packing", [True, False])
def test_datamodule_applies_fim_to_training_samples_only(tmp_path, fim_tokenizer, tiny_tokenizer, packing):
    from gitnetic.modules.transformer_datamodule import TransformerDataModule

    rng = np.random.default_rng(4)
    docs = [np.append(rng.integers(20, 500, size=int(rng.integers(8, 50))), EOS) for _ in range(80)]
    write_shard(tmp_path / "train", docs)
    tok = load_tokenizer(fim_tokenizer)

    def batches(fim_rate: float, split: str = "train") -> list:
        params = TransformerDataModule.Params(
            train_data_prefix=str(tmp_path / "train"), val_data_prefix=str(tmp_path / "train"),
            max_tokens=256, max_length=32, packing=packing, fim_rate=fim_rate, seed=5,
        )  # fmt: skip
        dm = TransformerDataModule(tokenizer=tok, params=params)
        dm.setup("fit")
        loader = dm.train_dataloader() if split == "train" else dm.val_dataloader()
        return [b["input_ids"] for b in loader]

    plain, fim, again = batches(0.0), batches(0.7), batches(0.7)
    assert len(plain) == len(fim)
    assert all(p.shape == f.shape for p, f in zip(plain, fim, strict=True))
    assert all((f == g).all() for f, g in zip(fim, again, strict=True))  # same seed, same samples
    n_prefix = sum(int((f == IDS.prefix).sum()) for f in fim)
    assert n_prefix > 10 and all(not (p == IDS.prefix).any() for p in plain)
    # validation stays plain left-to-right text
    assert all(not (v == IDS.prefix).any() for v in batches(0.7, "valid"))
    # a tokenizer without FIM tokens is refused with the fix
    with pytest.raises(ConfigError, match="--fim_tokens"):
        TransformerDataModule(
            tokenizer=load_tokenizer(tiny_tokenizer),
            params=TransformerDataModule.Params(train_data_prefix="x", batch_size=2, fim_rate=0.5),
        )
