"""``generate --infill`` (and the prompt evaluate and benchmark share) on tiny models of each family:
the prompt is that family's layout, from the tokenizer's own ids; no FIM tokens is a one-line error."""

from __future__ import annotations

import pytest

from gitnetic.cli import main as cli_main
from gitnetic.inference.generate import GenerateParams, Generator, generate, load_generation_model
from gitnetic.inference.params import DecodingParams
from tests.helpers import write_shard
from tests.helpers.families import family_folder

PREFIX, SUFFIX = "def add(a, b):\n    ", "return x\n"


def _generator(tmp_path_factory, name: str) -> Generator:
    model, tokenizer = load_generation_model(str(family_folder(tmp_path_factory, name)))
    return Generator(model, tokenizer, device="cpu")


@pytest.mark.parametrize(
    ("name", "sentinels", "bos"),
    [
        ("gpt2", ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"), False),
        ("starcoder2", ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"), False),
        ("qwen2.5-coder", ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"), False),
        ("deepseek-coder", ("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>"), True),
    ],
)
def test_infill_prompt_is_the_family_layout(tmp_path_factory, name, sentinels, bos) -> None:
    gen = _generator(tmp_path_factory, name)
    tok = gen.tokenizer
    p, s, m = tok.convert_tokens_to_ids(list(sentinels))
    encode = gen.encoder.encode
    head = [tok.bos_token_id] if bos else []
    expected = [*head, p, *encode(PREFIX).tolist(), s, *encode(SUFFIX).tolist(), m]
    assert gen.infill_ids(PREFIX, SUFFIX) == expected
    # evaluate's and benchmark's prompts from already-encoded tokens: the same function
    assert gen.infill_token_ids([11, 12], [13]) == [*head, p, 11, 12, s, 13, m]


def test_codellama_prompt_spacing_and_eot(tmp_path_factory) -> None:
    """<s> ▁<PRE> ▁prefix ▁<SUF> suffix ▁<MID>: the prefix keeps sentencepiece's leading space, the
    suffix does not get one (transformers' CodeLlamaTokenizer, Meta's encode_infilling); ▁<EOT> stops."""
    gen = _generator(tmp_path_factory, "codellama")
    tok = gen.tokenizer
    bos, pre, suf, mid, eot = tok.convert_tokens_to_ids(["<s>", "▁<PRE>", "▁<SUF>", "▁<MID>", "▁<EOT>"])
    ids = gen.infill_ids("x = add(1, 2)", SUFFIX)
    assert ids[:2] == [bos, pre] and ids[-1] == mid and ids.count(suf) == 1
    prefix, suffix = ids[2 : ids.index(suf)], ids[ids.index(suf) + 1 : -1]
    pieces = tok.convert_ids_to_tokens(suffix)
    assert pieces[0] != "▁" and not pieces[0].startswith("▁")  # no dummy space before the suffix
    assert "".join(pieces) == SUFFIX.replace(" ", "▁")
    assert tok.convert_ids_to_tokens(prefix)[0].startswith("▁")  # the prefix's dummy space kept
    assert "".join(tok.convert_ids_to_tokens(prefix)) == "▁x▁=▁add(1,▁2)"
    assert tok.convert_ids_to_tokens(gen.encoder.encode(SUFFIX).tolist())[0].startswith("▁")  # (plain encode)
    for text in ("\n    return a\n", " + 1", "x"):  # a suffix's own leading space or newline stays
        assert "".join(tok.convert_ids_to_tokens(gen.encode_suffix(text))) == text.replace(" ", "▁")
    assert gen.fim.eot == eot
    # generation stops at ▁<EOT> as at </s>: the model's own end of a middle (tiny random model: it
    # may or may not write it; the result never holds it)
    result = gen.run(ids, DecodingParams(greedy=True, max_new_tokens=6))
    assert result.new_tokens <= 6 and "<EOT>" not in result.text


def test_generate_cli_infills_with_family_models(tmp_path_factory, capsys) -> None:
    for name in ("codellama", "qwen2.5-coder", "deepseek-coder"):
        folder = family_folder(tmp_path_factory, name)
        args = [
            "--model",
            str(folder),
            "--prefix",
            PREFIX,
            "--suffix",
            SUFFIX,
            "--greedy",
            "--max_new_tokens",
            "4",
        ]
        assert cli_main.main(["generate", *args]) == 0, capsys.readouterr().err
        capsys.readouterr()
        params = GenerateParams(model=str(folder), prefix=PREFIX, suffix=SUFFIX)
        (result,) = generate(params, DecodingParams(greedy=True, max_new_tokens=4))
        gen = _generator(tmp_path_factory, name)
        assert result.prompt_tokens == len(gen.infill_ids(PREFIX, SUFFIX))


def test_repository_context_before_the_prompt(tmp_path_factory, capsys, caplog) -> None:
    gen = _generator(tmp_path_factory, "qwen2.5-coder")
    tok, encode = gen.tokenizer, (lambda text: gen.encoder.encode(text).tolist())
    repo, sep, p, s, m = tok.convert_tokens_to_ids(
        ["<|repo_name|>", "<|file_sep|>", "<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]
    )
    assert gen.infill_ids(PREFIX, SUFFIX, repo="me/lib", path="pkg/a.py") == [
        repo, *encode("me/lib\n"), sep, *encode("pkg/a.py\n"), p, *encode(PREFIX), s, *encode(SUFFIX), m
    ]  # fmt: skip
    # StarCoder2 FIMs the chunk after <file_sep>, path line included: the path opens the prefix
    star = _generator(tmp_path_factory, "starcoder2")
    tok, encode = star.tokenizer, (lambda text: star.encoder.encode(text).tolist())
    repo, sep, p, s, m = tok.convert_tokens_to_ids(
        ["<repo_name>", "<file_sep>", "<fim_prefix>", "<fim_suffix>", "<fim_middle>"]
    )
    assert star.infill_ids(PREFIX, SUFFIX, repo="me/lib", path="pkg/a.py") == [
        repo, *encode("me/lib"), sep, p, *encode("pkg/a.py\n"), *encode(PREFIX), s, *encode(SUFFIX), m
    ]  # fmt: skip
    assert star.infill_ids(PREFIX, SUFFIX, repo="me/lib") == [
        repo, *encode("me/lib"), p, *encode(PREFIX), s, *encode(SUFFIX), m
    ]  # fmt: skip
    folder = str(family_folder(tmp_path_factory, "qwen2.5-coder"))
    args = ["--model", folder, "--prefix", PREFIX, "--suffix", SUFFIX, "--max_new_tokens", "2", "--greedy"]
    assert cli_main.main(["generate", *args, "--repo_name", "me/lib", "--file_path", "pkg/a.py"]) == 0
    capsys.readouterr()
    line = _one_error(capsys, ["generate", "--model", folder, "--prompt", "x", "--repo_name", "me/lib"])
    assert "for infilling" in line
    # a family without repository tokens says it does not use them
    deepseek = _generator(tmp_path_factory, "deepseek-coder")
    with caplog.at_level("WARNING"):
        assert deepseek.infill_ids(PREFIX, SUFFIX, repo="me/lib") == deepseek.infill_ids(PREFIX, SUFFIX)
    assert "deepseek-coder models have no repository-name tokens" in caplog.text


def _one_error(capsys, argv: list[str]) -> str:
    rc = cli_main.main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(f"gitnetic {argv[0]}: error:")]
    assert rc == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_no_known_fim_tokens_is_a_one_line_cli_error(tmp_path_factory, tmp_path, capsys) -> None:
    plain = family_folder(tmp_path_factory, "plain")
    line = _one_error(capsys, ["generate", "--model", str(plain), "--prefix", "a = ", "--suffix", "\n"])
    assert str(plain) in line and "no FIM tokens" in line and "codellama (▁<PRE>)" in line
    write_shard(tmp_path / "train", [[5, 6, 7, 8, 9, 0]] * 16)
    argv = ["train", "--task", "transformer-task", "--init_from", str(plain), "--train_data_prefix",
            str(tmp_path / "train"), "--fim_rate", "0.5", "--batch_size", "2", "--max_length", "16", "--max_steps", "1",
            "--save_dir", str(tmp_path / "ckpt"), "--gpus", "0"]  # fmt: skip
    line = _one_error(capsys, argv)
    assert "--fim_rate 0.5" in line and str(plain) in line and "qwen2.5-coder (<|fim_prefix|>)" in line
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").iterdir())
