"""The corpus params: nested groups from flags, params.yaml and dicts; old flat keys name their new place;
every function of the corpus package takes typed params."""

from __future__ import annotations

import ast
import pickle
import re
from pathlib import Path

import pytest
import yaml

from gitnetic.cli import corpus as corpus_cli
from gitnetic.common.errors import ConfigError
from gitnetic.data.corpus.params import (
    MOVED_KEYS,
    CorpusParams,
    DecontaminateParams,
    FilterParams,
    NearDupParams,
    PartsParams,
    RedactParams,
    SplitParams,
)
from tests.helpers import REPO, child_env, run_gitnetic

CORPUS_PACKAGE = REPO / "gitnetic" / "data" / "corpus"


def parse(*argv: str) -> CorpusParams:
    params, _job, _ = corpus_cli.build_parser().parse_args_into_dataclasses(list(argv))
    return params


def test_dotted_flags_fill_the_groups() -> None:
    params = parse(
        "--neardup.threshold", "0.9", "--neardup.library", "datasketch", "--no_redact.emails",
        "--filters.max_line_length", "2000", "--decontaminate.benchmarks", "--splits.seed", "7",
        "--parts.count", "3", "--num_workers", "2",
    )  # fmt: skip
    assert params.neardup == NearDupParams(threshold=0.9, library="datasketch")
    assert params.redact == RedactParams(emails=False)
    assert params.filters == FilterParams(max_line_length=2000)
    assert params.decontaminate == DecontaminateParams(benchmarks=[])
    assert params.splits == SplitParams(seed=7)
    assert params.parts == PartsParams(count=3) and params.num_workers == 2


def test_params_yaml_groups_and_flags(tmp_path: Path) -> None:
    section = {
        "source": "dir",
        "path": "src",
        "neardup": {"enabled": False, "ngram": 3},
        "splits": {"valid_ratio": 0.1, "test_ratio": 0.2, "seed": 5},
        "redact": {"secrets": False},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"corpus": section}))
    params = parse("--config", f"{tmp_path / 'params.yaml'}:corpus", "--splits.seed", "6")
    assert params.neardup == NearDupParams(enabled=False, ngram=3)
    assert params.splits == SplitParams(valid_ratio=0.1, test_ratio=0.2, seed=6)  # the flag wins
    assert params.redact == RedactParams(secrets=False, emails=True)
    # the same mapping read as the Snakefile and init read it, and as a dict given to the constructor
    assert (
        CorpusParams.from_dict(section)
        == CorpusParams(**section)
        == parse("--config", f"{tmp_path / 'params.yaml'}:corpus", "--splits.seed", "5")
    )
    assert CorpusParams.from_dict(CorpusParams.from_dict(section).to_dict()) == CorpusParams.from_dict(
        section
    )


def test_repository_params_yaml_reads_into_the_groups() -> None:
    params = CorpusParams.from_dict(yaml.safe_load((REPO / "params.yaml").read_text())["corpus"])
    assert params.splits == SplitParams(valid_ratio=0.03, test_ratio=0.05, seed=1234)
    assert params.parts.count == 1 and params.neardup == NearDupParams()


@pytest.mark.parametrize(("old", "new"), sorted(MOVED_KEYS.items()))
def test_an_old_flat_key_names_its_new_place(old: str, new: str) -> None:
    value = ["humaneval"] if old == "decontaminate" else 0.5
    with pytest.raises(ConfigError) as err:
        CorpusParams.from_dict({old: value})
    assert str(err.value).startswith(f"corpus key {old} moved to {new}; ")
    assert "\n" not in str(err.value)


def test_an_old_flat_key_in_params_yaml_is_a_one_line_cli_error(tmp_path: Path) -> None:
    (tmp_path / "params.yaml").write_text("corpus:\n  near_dedup_threshold: 0.9\n")
    run = run_gitnetic("corpus", "--config", "params.yaml:corpus", cwd=tmp_path, env=child_env())
    assert run.returncode == 2 and "Traceback" not in run.stderr
    (line,) = [ln for ln in run.stderr.splitlines() if ln.strip()]
    assert (
        "key near_dedup_threshold moved to neardup.threshold; write it as `neardup: {threshold: ...}`" in line
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"splits": {"valid_ratio": 0.6, "test_ratio": 0.4}}, "splits.valid_ratio + splits.test_ratio"),
        ({"parts": {"count": 0}}, "parts.count must be >= 1"),
        ({"neardup": {"threshold": 0.9, "shingles": 3}}, "unknown corpus.neardup key(s) shingles"),
        ({"neardup": 0.9}, "corpus.neardup must be a mapping of enabled, threshold"),
    ],
)
def test_bad_groups_are_one_line_config_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        CorpusParams(**kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_cleaning_groups_travel_to_workers_as_they_are() -> None:
    params = CorpusParams(neardup={"threshold": 0.7}, decontaminate={"benchmarks": []})
    groups = (params.filters, params.redact, params.neardup, params.decontaminate)
    assert pickle.loads(pickle.dumps(groups)) == groups


def test_no_function_of_the_corpus_package_takes_params_typed_any() -> None:
    """Every module sits above ``params.py``, so every function can name the typed group it reads."""
    untyped = []
    for path in sorted(CORPUS_PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs]:
                    if arg.annotation is not None and ast.unparse(arg.annotation) in ("Any", "typing.Any"):
                        untyped.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}({arg.arg})")
    assert not untyped, untyped


def test_params_yaml_spells_out_every_group_so_dvc_set_param_reaches_each_key(tmp_path: Path) -> None:
    """``dvc exp run -S corpus.neardup.threshold=0.9`` overrides only keys the file has (Hydra's struct
    mode), so params.yaml lists every field of every group, at its default."""
    from dvc.utils.hydra import apply_overrides

    section = yaml.safe_load((REPO / "params.yaml").read_text())["corpus"]
    defaults = CorpusParams().to_dict()
    for group in ("filters", "redact", "decontaminate", "neardup"):
        assert section[group] == defaults[group], group
    for group in ("splits", "parts"):
        assert set(section[group]) == set(defaults[group]), group
    copy = tmp_path / "params.yaml"
    copy.write_text((REPO / "params.yaml").read_text())
    apply_overrides(copy, ["corpus.neardup.threshold=0.9", "corpus.redact.emails=false"])
    params = CorpusParams.from_dict(yaml.safe_load(copy.read_text())["corpus"])
    assert (params.neardup.threshold, params.redact.emails) == (0.9, False)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            "name: x, type: dir",
            r"--sources 'name: x, type: dir' is not valid YAML \(mapping values are not allowed here, "
            r"line 1, column 14\)",
        ),
        (
            "[{name: a",
            r"--sources '\[\{name: a' is not valid YAML \(expected ',' or '\}'.*line 1, column 10\)",
        ),
        ("", r"--sources '' is empty"),
        ("code", r"--sources 'code' must be a mapping, got the string 'code'"),
        (
            "[{name: a}, {name: b}]",
            r"--sources '\[\{name: a\}, \{name: b\}\]' must be one mapping, got a list",
        ),
    ],
)
def test_a_malformed_sources_flag_says_what_is_wrong(value: str, message: str) -> None:
    """Issue 29 item 7: each of these said "must be a mapping ..., got None" (or showed the parsed value),
    not what was wrong with what was typed."""
    with pytest.raises(ConfigError) as err:
        parse("--sources", value)
    text = str(err.value)
    assert "\n" not in text and "got None" not in text
    assert re.search(message, text), text
    assert (
        text.startswith("corpus.sources[0]: ")
        and "e.g. --sources '{name: code, type: dir, path: src}'" in text
    )


def test_a_wrong_sources_entry_in_params_yaml_names_its_kind(tmp_path: Path) -> None:
    """A params.yaml entry is parsed YAML already: a scalar or a list in place of the mapping is named so."""
    with pytest.raises(
        ConfigError, match=r"corpus.sources\[1\] must be a mapping, got a list \[1, 2\]; e\.g\. "
    ):
        CorpusParams(sources=[{"name": "a", "type": "stdlib"}, [1, 2]])
