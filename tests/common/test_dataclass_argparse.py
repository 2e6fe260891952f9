"""DataclassArgumentParser: every supported field type, YAML defaults, errors, shared fields."""

from __future__ import annotations

import enum
from argparse import Namespace
from dataclasses import dataclass, field, make_dataclass
from typing import Literal, Optional, Union

import pytest

from gitnetic.common.dataclass_argparse import DataclassArgumentParser, DataclassBase, get_params_item
from gitnetic.common.errors import ConfigError


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


@dataclass
class Everything(DataclassBase):
    name: str = field(default="x", metadata={"help": "a name, 100% ascii"})
    steps: int = field(default=3, metadata={"help": "steps"})
    lr: float = field(default=0.5)
    flag: bool = field(default=False)
    enabled: bool = field(default=True)
    maybe: Optional[int] = field(default=None)  # noqa: UP045 - the typing spelling is what users write
    maybe_new: int | None = field(default=None)
    mode: Literal["auto", "mlm", "clm"] = field(default="auto")
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    betas: tuple[float, float] = field(default=(0.9, 0.98))
    limit: Union[int, str] = field(default="all")  # noqa: UP007
    color: Color = field(default=Color.RED)


def shared_seed():
    return field(default=1, metadata={"shared": True})


@dataclass
class Needs(DataclassBase):
    path: str = field(metadata={"help": "required path"})
    seed: int = shared_seed()


@dataclass
class Other(DataclassBase):
    seed: int = shared_seed()
    extra: str = field(default="e")


@dataclass
class Unmarked(DataclassBase):
    seed: int = field(default=1)


@dataclass
class SharedOtherDefault(DataclassBase):
    seed: int = field(default=2, metadata={"shared": True})


@dataclass
class SharedOtherType(DataclassBase):
    seed: float = field(default=1, metadata={"shared": True})


def parse(argv, *types):
    parser = DataclassArgumentParser(prog="t")
    for t in types:
        parser.add_arguments(t)
    return parser.parse_args_into_dataclasses(argv)


def test_defaults_round_trip():
    (e, ns) = parse([], Everything)
    assert e == Everything()
    assert isinstance(ns, Namespace) and vars(ns) == {"config": []}


def test_every_type_from_flags():
    (e, _) = parse(
        [
            "--name",
            "y",
            "--steps",
            "7",
            "--lr",
            "1e-3",
            "--flag",
            "--no_enabled",
            "--maybe",
            "4",
            "--maybe-new",
            "5",
            "--mode",
            "clm",
            "--sizes",
            "3",
            "4",
            "5",
            "--betas",
            "0.8",
            "0.9",
            "--limit",
            "12",
            "--color",
            "blue",
        ],
        Everything,
    )
    assert (e.name, e.steps, e.lr, e.flag, e.enabled, e.maybe, e.maybe_new) == (
        "y",
        7,
        1e-3,
        True,
        False,
        4,
        5,
    )
    assert e.mode == "clm" and e.sizes == [3, 4, 5] and e.color is Color.BLUE
    assert tuple(e.betas) == (0.8, 0.9) and isinstance(e.betas, tuple)
    assert e.limit == 12 and isinstance(e.limit, int)


def test_bool_explicit_values_and_union_fallback_to_str():
    (e, _) = parse(["--flag", "false", "--enabled", "true", "--limit", "many"], Everything)
    assert e.flag is False and e.enabled is True and e.limit == "many"


@pytest.mark.parametrize(
    "argv",
    [["--mode", "gpt"], ["--steps", "many"], ["--color", "green"], ["--flag", "maybe"], ["--nope", "1"]],
)
def test_bad_values_are_one_line_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as info:
        parse(argv, Everything)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "Traceback" not in err


def test_required_field_missing_is_an_error(capsys):
    with pytest.raises(SystemExit) as info:
        parse([], Needs)
    assert info.value.code == 2
    assert "--path" in capsys.readouterr().err


def test_yaml_defaults_overridden_by_flags(tmp_path):
    cfg = tmp_path / "params.yaml"
    cfg.write_text(
        "train:\n  steps: 9\n  lr: 0.25\n  flag: true\n  enabled: false\n  mode: mlm\n  sizes: [7, 8]\n"
        "  color: blue\n  maybe: null\n  path: from/yaml\n"
    )
    (e, n, _) = parse([f"--config={cfg}:train", "--steps", "11"], Everything, Needs)
    assert e.steps == 11  # flag wins
    assert (e.lr, e.flag, e.enabled, e.mode, e.sizes, e.color) == (
        0.25,
        True,
        False,
        "mlm",
        [7, 8],
        Color.BLUE,
    )
    assert n.path == "from/yaml"  # a required field can come from YAML


def test_unknown_yaml_key_names_the_key(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match="stepz") as info:
        parse(["--config", str(cfg)], Everything)
    assert "\n" not in str(info.value)


def test_yaml_boolean_key_is_a_clear_error(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("on: 3\n")  # YAML 1.1 reads the key as True
    with pytest.raises(ConfigError, match="quote it"):
        parse(["--config", str(cfg)], Everything)


def test_bad_yaml_value_and_syntax_are_config_errors(tmp_path):
    bad_value = tmp_path / "v.yaml"
    bad_value.write_text("mode: gpt\n")
    with pytest.raises(ConfigError, match="mode"):
        parse(["--config", str(bad_value)], Everything)
    bad_syntax = tmp_path / "s.yaml"
    bad_syntax.write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse(["--config", str(bad_syntax)], Everything)
    with pytest.raises(ConfigError, match="no section"):
        parse(["--config", f"{bad_value}:missing"], Everything)
    with pytest.raises(ConfigError, match="does not exist"):
        parse(["--config", str(tmp_path / "absent.yaml")], Everything)


def test_shared_field_name_fills_both_dataclasses():
    (n, o, ns) = parse(["--path", "p", "--seed", "42"], Needs, Other)
    assert n.seed == 42 and o.seed == 42 and o.extra == "e"
    assert "seed" not in vars(ns)


@pytest.mark.parametrize("second", [Unmarked, SharedOtherDefault, SharedOtherType])
def test_a_name_two_dataclasses_declare_is_an_error_unless_one_shared_field(second):
    """An accidental collision (unmarked, or marked but with another type or default) fails when the
    parser is built, naming both classes, in either order."""
    for first, then in ((Other, second), (second, Other)):
        parser = DataclassArgumentParser(prog="t")
        parser.add_arguments(first)
        with pytest.raises(
            ConfigError, match=f"'seed' is declared by both .*{first.__name__} and .*{then.__name__}"
        ):
            parser.add_arguments(then)


@pytest.mark.parametrize("name", ["config", "accelerator"])
def test_a_field_named_like_a_plain_argument_is_an_error(name):
    """A field whose name the parser already has as a plain argument (--config, a pass-through flag)
    would be filled from that argument: refused."""
    clashing = make_dataclass("Clashing", [(name, str, field(default="x"))], bases=(DataclassBase,))
    parser = DataclassArgumentParser(prog="t")
    parser.add_argument("--accelerator", default="cpu")
    with pytest.raises(ConfigError, match=f"params field '{name}' of .*Clashing is also a plain argument"):
        parser.add_arguments(clashing)


def test_plain_arguments_land_in_namespace():
    parser = DataclassArgumentParser(prog="t")
    parser.add_arguments(Other)
    parser.add_argument("--accelerator", default="cpu")
    (o, ns) = parser.parse_args_into_dataclasses(["--accelerator", "gpu", "--extra", "z"])
    assert o.extra == "z" and ns.accelerator == "gpu"


def test_help_lists_groups_and_survives_percent_signs(capsys):
    parser = DataclassArgumentParser(prog="t")
    parser.add_arguments(Everything)
    parser.add_arguments(Needs)
    with pytest.raises(SystemExit) as info:
        parser.parse_args_into_dataclasses(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "Everything parameters" in out and "Needs parameters" in out
    assert "100% ascii" in out and "required path (required)" in out


def test_get_params_item_prefers_exact_type():
    @dataclass
    class Sub(Other):
        pass

    sub, base = Sub(), Other(seed=5)
    assert get_params_item((sub, base, Namespace()), Other) is base
    assert get_params_item((sub, Namespace()), Other) is sub
    assert get_params_item((Namespace(),), Other) is None


def test_to_dict_from_dict_and_yaml(tmp_path):
    e = Everything(color=Color.BLUE)
    d = e.to_dict()
    assert d["color"] == "blue"
    with pytest.raises(ConfigError, match="bogus"):
        Everything.from_dict({"bogus": 1})
    path = tmp_path / "o.yaml"
    path.write_text("s:\n  seed: 3\n  extra: q\n")
    assert Other.from_yaml(path, "s") == Other(seed=3, extra="q")


# ------------------------------------------------------------------------------ nested groups
@dataclass
class Inner(DataclassBase):
    threshold: float = field(default=0.5, metadata={"help": "a threshold"})
    enabled: bool = field(default=True)
    names: list[str] = field(default_factory=lambda: ["a"])


@dataclass
class Deep(DataclassBase):
    inner: Inner = field(default_factory=Inner)
    depth: int = 1


@dataclass
class Outer(DataclassBase):
    MOVED_KEYS = {
        "old_threshold": "inner.threshold",
        "inner_names": "inner.names",
        "old_enabled": "inner.enabled",
        "deep": "deep.inner",
    }

    top: int = 1
    inner: Inner = field(default_factory=Inner)
    deep: Deep = field(default_factory=Deep)


def test_nested_groups_are_dotted_flags():
    (o, ns) = parse(["--inner.threshold", "0.9", "--no_inner.enabled", "--deep.inner.names", "x", "y"], Outer)
    assert o == Outer(inner=Inner(threshold=0.9, enabled=False), deep=Deep(inner=Inner(names=["x", "y"])))
    assert vars(ns) == {"config": []}  # the dotted dests went into the groups, not the namespace
    (default, _) = parse([], Outer)
    assert default == Outer()


def test_nested_yaml_mappings_fill_groups_and_flags_win(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(
        "outer:\n  top: 2\n  inner: {threshold: 0.7, names: [b]}\n  deep: {depth: 3, inner: {enabled: false}}\n"
    )
    (o, _) = parse(["--config", f"{cfg}:outer", "--inner.threshold", "0.8"], Outer)
    assert o == Outer(
        top=2, inner=Inner(threshold=0.8, names=["b"]), deep=Deep(Inner(enabled=False), depth=3)
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "inner: {treshold: 0.7}",
            "unknown key 'inner.treshold'; valid keys of inner: threshold, enabled, names",
        ),
        (
            "old_threshold: 0.7",
            "key old_threshold moved to inner.threshold; write it as `inner: {threshold: ...}`",
        ),
        ("deep: 3", "key deep moved to deep.inner"),  # a group given a scalar: the old key of that name
        ("inner: 3", "inner must be a mapping of threshold, enabled, names; got 3"),
    ],
)
def test_nested_yaml_errors_are_one_line(tmp_path, text, expected):
    cfg = tmp_path / "p.yaml"
    cfg.write_text(text + "\n")
    with pytest.raises(ConfigError) as err:
        parse(["--config", str(cfg)], Outer)
    assert expected in str(err.value) and "\n" not in str(err.value)


def test_nested_to_dict_from_dict_round_trip():
    o = Outer(top=3, inner=Inner(threshold=0.1), deep=Deep(depth=4))
    d = o.to_dict()
    assert d["inner"] == {"threshold": 0.1, "enabled": True, "names": ["a"]} and d["deep"]["inner"][
        "names"
    ] == ["a"]
    assert Outer.from_dict(d) == o
    assert Outer.from_dict({"inner": {"enabled": False}}) == Outer(inner=Inner(enabled=False))
    with pytest.raises(ConfigError, match=r"unknown Outer\.inner key\(s\) bogus; valid keys: enabled, names"):
        Outer.from_dict({"inner": {"bogus": 1}})
    with pytest.raises(ConfigError, match=r"^Outer key inner_names moved to inner\.names; "):
        Outer.from_dict({"inner_names": ["z"]}, strict=False)  # a moved key is an error even when not strict


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--old_threshold", "0.7"], "flag --old_threshold moved to --inner.threshold"),
        (["--old-threshold=0.7"], "flag --old_threshold moved to --inner.threshold"),
        (["--no_old_enabled"], "flag --no_old_enabled moved to --no_inner.enabled"),
    ],
)
def test_a_moved_flag_names_its_new_flag(argv, expected, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse(argv, Outer)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("yaml_value", "key", "expected", "given"),
    [
        ("steps: [1, 2]", "steps", "int", "a list"),
        ("steps: {a: 1}", "steps", "int", "a mapping"),
        ("name: [x, y]", "name", "str", "a list"),
        ("lr: {a: 1}", "lr", "float", "a mapping"),
        ("flag: [true]", "flag", "bool", "a list"),
        ("maybe: [3]", "maybe", "int", "a list"),
        ("mode: [clm]", "mode", "'auto'|'mlm'|'clm'", "a list"),
        ("color: {blue: 1}", "color", "Color", "a mapping"),
        ("limit: [all]", "limit", "int|str", "a list"),
        ("sizes: {a: 1}", "sizes", "list", "a mapping"),
        ("sizes: [[1, 2]]", "sizes", "a list of int", "a list"),
    ],
)
def test_a_yaml_value_of_the_wrong_type_is_one_line_naming_file_section_and_key(
    yaml_value, key, expected, given, tmp_path
):
    """Issue 29 item 4: a list or mapping where a scalar is expected used to pass through unconverted and
    fail deep inside a stage (``TypeError: '<' not supported ...``)."""
    cfg = tmp_path / "params.yaml"
    cfg.write_text(f"train:\n  {yaml_value}\n")
    with pytest.raises(ConfigError) as info:
        parse(["--config", f"{cfg}:train"], Everything)
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{cfg}:train: key {key!r} ")
    assert f"must be {expected}" in message and f"got {given}" in message


def test_a_yaml_list_for_a_plain_argument_passes_as_before(tmp_path):
    """Plain arguments carry no annotation to check against, and lightning.Trainer's pass-through flags
    take lists their flag type cannot say (``devices: [0, 1]``): they pass unchanged."""
    cfg = tmp_path / "p.yaml"
    cfg.write_text("devices: [0, 1]\n")
    parser = DataclassArgumentParser(prog="t")
    parser.add_argument("--devices", type=int, default=None)
    (ns,) = parser.parse_args_into_dataclasses(["--config", str(cfg)])
    assert ns.devices == [0, 1]


def test_from_yaml_refuses_a_value_of_the_wrong_type(tmp_path):
    path = tmp_path / "o.yaml"
    path.write_text("s:\n  seed: [3]\n")
    with pytest.raises(ConfigError, match=r"o\.yaml:s: key 'seed' must be int, got a list"):
        Other.from_yaml(path, "s")
    with pytest.raises(ConfigError, match=r"Other: key 'extra' must be str, got a mapping"):
        Other.from_dict({"extra": {"a": 1}})


def test_config_given_a_folder_or_a_fifo_says_what_it_is(tmp_path):
    """Issue 29 item 7: a folder or a named pipe is not "does not exist"."""
    import os

    with pytest.raises(ConfigError, match=r"is a directory, not a file; pass a YAML file"):
        parse(["--config", f"{tmp_path}:train"], Everything)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match=r"is not a regular file \(a named pipe\); pass a YAML file"):
        parse(["--config", f"{fifo}:train"], Everything)


def test_a_nested_group_value_of_the_wrong_yaml_kind_is_one_line(tmp_path):
    cfg = tmp_path / "p.yaml"
    cfg.write_text("outer:\n  inner: {threshold: [1, 2]}\n")
    with pytest.raises(ConfigError) as err:
        parse(["--config", f"{cfg}:outer"], Outer)
    assert "inner.threshold" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError, match="threshold"):
        Outer.from_dict({"inner": {"threshold": {"a": 1}}})
