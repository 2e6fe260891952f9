"""Typed parameters: one dataclass is the single source of a parameter's name, type, default and help.

Every component declares a ``Params`` dataclass deriving from :class:`DataclassBase`. The CLI turns it
into argparse flags (``DataclassArgumentParser.add_arguments``), YAML files (``--config params.yaml``
or ``--config params.yaml:train``) supply defaults that flags override, and parsing hands back one
instance per dataclass plus a ``Namespace`` with whatever else was registered on the parser.

Field help lives in ``field(metadata={"help": ...})``. Supported field types: ``str``, ``int``,
``float``, ``bool`` (``--flag``, ``--flag true|false`` or ``--no_flag``), ``Optional[X]``,
``Literal[...]``, ``Enum`` subclasses, ``list[X]`` and ``Union`` of scalars (tried in order).

One flag per name: a field name that a second dataclass on the same parser also declares is an error
when the parser is built (:class:`ConfigError` naming both classes), because one flag would silently
fill two params with two meanings (and the first declaration's default would win for both). Two params
groups may share a name only when it is one field with one meaning: both declarations carry
``metadata={"shared": True}`` and have the same type and default (best: both come from one function
that returns the ``field(...)``, e.g. :func:`gitnetic.modules.params.run_seed_field`); then one flag
fills both. A field whose name is already a plain argument of the parser (``--config``, ``--task``)
is an error too: the argument's value would fill the field.

A field whose type is another ``DataclassBase`` dataclass is a nested group: its fields become dotted
flags (``--neardup.threshold 0.9``, as litgpt and jsonargparse spell them), a YAML mapping under the
field's name fills it (``neardup: {threshold: 0.9}``, which is also what ``dvc exp run -S
corpus.neardup.threshold=0.9`` edits), and ``to_dict``/``from_dict`` recurse. A params class whose keys
moved lists them in ``MOVED_KEYS`` (old key -> new dotted place): an old key in a params file is then a
one-line error naming its new place rather than a generic unknown key.

A YAML value of the wrong kind (a list or mapping where a field takes one value, a mapping where it takes a
list) is a one-line error naming the file, section and key, when the params are read, not a ``TypeError``
deep in a stage; a list field that also accepts a mapping and converts it itself says so with
``metadata={"mapping_ok": True}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import sys
import types
import typing
from argparse import Namespace
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from gitnetic.common.errors import ConfigError
from gitnetic.common.files import file_problem

__all__ = [
    "DataclassBase",
    "DataclassArgumentParser",
    "get_params_item",
    "load_yaml",
    "load_yaml_section",
    "scalar_parser",
    "split_config_arg",
    "str2bool",
]

T = TypeVar("T", bound="DataclassBase")


class DataclassBase:
    """Mixin for params dataclasses: dict/YAML round trips and a readable repr of changed values."""

    # Keys of earlier versions -> their new dotted place (``near_dedup_threshold`` -> ``neardup.threshold``).
    MOVED_KEYS: ClassVar[dict[str, str]] = {}
    # What errors call these params (``corpus``: its params.yaml section); default the class name.
    PARAMS_NAME: ClassVar[str | None] = None

    def to_dict(self) -> dict[str, Any]:
        out = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, DataclassBase):  # a nested group: a nested mapping
                value = value.to_dict()
            out[f.name] = value.value if isinstance(value, enum.Enum) else value
        return out

    @classmethod
    def from_dict(cls: type[T], values: dict[str, Any], strict: bool = True, where: str | None = None) -> T:
        """An instance from a mapping (a YAML section: ``where`` names it in type errors, e.g.
        ``params.yaml:train``)."""
        return _from_mapping(cls, values, strict, cls.PARAMS_NAME or cls.__qualname__, where)

    @classmethod
    def from_yaml(cls: type[T], path: str | Path, section: str | None = None, strict: bool = True) -> T:
        where = f"{path}:{section}" if section else str(path)
        return cls.from_dict(load_yaml_section(path, section), strict=strict, where=where)


def group_type(tp: Any) -> type | None:
    """The params dataclass a field's type names when the field is a nested group, else None."""
    base, _ = _unwrap_optional(tp)
    if isinstance(base, type) and dataclasses.is_dataclass(base) and issubclass(base, DataclassBase):
        return base
    return None


def _group_types(cls: type) -> dict[str, type]:
    """``cls``' nested groups: field name -> its params dataclass."""
    hints = get_type_hints(cls, include_extras=False, localns=_localns(cls))
    found = {f.name: group_type(hints.get(f.name)) for f in dataclasses.fields(cls) if f.init}
    return {name: tp for name, tp in found.items() if tp is not None}


def moved_key_message(where: str, old: str, new: str) -> str:
    """The one-line error for a key of an earlier version that now lives at ``new`` (dotted)."""
    head, _, rest = new.partition(".")
    nested = f"{head}: {{{rest}: ...}}" if rest else f"{head}: ..."
    return f"{where} key {old} moved to {new}; write it as `{nested}` (flag --{new})"


def _from_mapping(
    cls: type[T], values: dict[str, Any], strict: bool, where: str, file_where: str | None = None
) -> T:
    """``cls`` from a mapping, nested groups from nested mappings (``where`` names it in errors; a value of
    the wrong YAML kind is named by ``file_where``, the file and section, when it came from one)."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    groups = _group_types(cls)
    for key, value in values.items():
        if key in cls.MOVED_KEYS and (key not in names or (key in groups and not isinstance(value, dict))):
            raise ConfigError(moved_key_message(where, key, cls.MOVED_KEYS[key]))
    unknown = sorted(set(values) - names)
    if unknown and strict:
        raise ConfigError(
            f"unknown {where} key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    kwargs = {k: v for k, v in values.items() if k in names}
    _check_value_types(cls, kwargs, file_where or where)  # nested groups are checked at their own level
    for name, tp in groups.items():
        if name in kwargs:
            kwargs[name] = group_value(tp, kwargs[name], f"{where}.{name}", strict)
    return cls(**kwargs)


def group_value(tp: type[T], value: Any, where: str, strict: bool = True) -> T:
    """A nested group's value: its dataclass as given, or built from a mapping (``where`` names it)."""
    if isinstance(value, tp):
        return value
    if not isinstance(value, dict):
        valid = ", ".join(f.name for f in dataclasses.fields(tp))  # type: ignore[arg-type]
        raise ConfigError(f"{where} must be a mapping of {valid}; got {value!r}")
    return _from_mapping(tp, value, strict, where)


def fill_groups(params: DataclassBase) -> None:
    """Replace each mapping given for a nested group of ``params`` by its dataclass (a ``__post_init__``
    calls it, so ``CorpusParams(neardup={"threshold": 0.9})`` works as the YAML does)."""
    for name, tp in _group_types(type(params)).items():
        value = getattr(params, name)
        if not isinstance(value, tp):
            where = type(params).PARAMS_NAME or type(params).__qualname__
            setattr(params, name, group_value(tp, value, f"{where}.{name}"))


def get_params_item(params: Iterable[Any], params_type: type[T]) -> T | None:
    """Return the first item of ``params`` of exactly ``params_type`` (else a subclass instance, else None)."""
    items = list(params)
    for item in items:
        if type(item) is params_type:
            return item
    for item in items:
        if isinstance(item, params_type):
            return item
    return None


def str2bool(value: str | bool) -> bool:
    if isinstance(value, bool):
        return value
    lowered = str(value).strip().lower()
    if lowered in {"1", "true", "yes", "y", "on", "t"}:
        return True
    if lowered in {"0", "false", "no", "n", "off", "f"}:
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean (true/false), got {value!r}")


def load_yaml(path: str | Path, what: str = "config file") -> Any:
    """Parse a YAML file; a missing file, bad syntax or non-UTF-8 text is a one-line ``ConfigError``."""
    p = Path(path)
    problem = file_problem(p)
    if problem == "does not exist":
        raise ConfigError(f"{what} {p} does not exist; pass an existing YAML file")
    if problem:
        raise ConfigError(f"{what} {p} {problem}; pass a YAML file")
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} {p} is not valid YAML{where}: {problem}; fix the syntax") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {p} is not UTF-8 text; save it as UTF-8") from None


def load_yaml_section(path: str | Path, section: str | None = None) -> dict[str, Any]:
    """Load a YAML mapping, optionally a dotted sub-section of it (``train`` or ``pipeline.train``)."""
    p = Path(path)
    data = load_yaml(p)
    data = {} if data is None else data
    if section:
        for key in section.split("."):
            if not isinstance(data, dict) or key not in data:
                raise ConfigError(f"config file {p} has no section {section!r}; add it or name another")
            data = data[key]
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"config file {p}{':' + section if section else ''} must be a mapping of key: value"
        )
    return data


def split_config_arg(value: str) -> tuple[str, str | None]:
    """``FILE[:SECTION]`` (a ``--config`` value) -> ``(file, section or None)``.

    Windows-style ``C:\\...`` and plain names stay intact.
    """
    if ":" in value:
        head, _, tail = value.rpartition(":")
        if head and tail and not tail.startswith(("\\", "/")):
            return head, tail
    return value, None


_NO_MATCH = object()


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) < len(get_args(tp))
        if len(args) == 1:
            return args[0], optional
        return Union[tuple(args)], optional  # noqa: UP007
    return tp, False


def scalar_parser(tp: Any) -> Any:
    """Return a callable that converts one command-line (or YAML) string to ``tp``: the one rule for
    ``bool``/``int``/``float``/``str``/``Path``, enums, ``Literal`` values and unions of them (tried in
    order, ``str`` last), used by params fields and the trainer's pass-through flags alike."""
    if tp is bool:
        return str2bool
    if tp in (int, float, str):
        return tp
    if tp is Path:
        return Path
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(tp) if a is not type(None)]

        def parse_union(value: str) -> Any:
            for opt in options:
                if opt is str:
                    continue
                if get_origin(opt) is typing.Literal:  # a union member Literal[...]: its values only
                    match = next((c for c in get_args(opt) if str(c) == value), _NO_MATCH)
                    if match is not _NO_MATCH:
                        return match
                    continue
                try:
                    return scalar_parser(opt)(value)
                except (TypeError, ValueError, argparse.ArgumentTypeError):
                    continue
            if str in options:
                return value
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {parse_union.__name__}")

        parse_union.__name__ = "|".join(_type_name(o) for o in options)
        return parse_union
    if isinstance(tp, type) and issubclass(tp, enum.Enum):

        def parse_enum(value: str) -> Any:
            for member in tp:
                if str(member.value) == value or member.name == value:
                    return member
            raise argparse.ArgumentTypeError(f"{value!r} is not one of {[m.value for m in tp]}")

        parse_enum.__name__ = tp.__name__
        return parse_enum
    if origin is typing.Literal:
        choices = get_args(tp)
        kinds = {type(c) for c in choices}
        return kinds.pop() if len(kinds) == 1 else str
    return str


def _type_name(tp: Any) -> str:
    if get_origin(tp) is typing.Literal:
        return "|".join(repr(c) for c in get_args(tp))
    return getattr(tp, "__name__", str(tp))


class DataclassArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that adds flags from params dataclasses and parses back into instances.

    ``parse_args_into_dataclasses`` returns ``(*instances, namespace)``: one instance per dataclass
    added, in the order added, then a ``Namespace`` with the values of any plain argparse arguments.
    A field declared by two dataclasses with ``metadata={"shared": True}`` (same type and default) is
    registered once and fills both; any other repeated name is a :class:`ConfigError` (module docstring).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", argparse.ArgumentDefaultsHelpFormatter)
        super().__init__(*args, **kwargs)
        self._dataclass_types: list[type] = []
        self._dest_owner: dict[str, type] = {}
        self._dest_fields: dict[str, tuple[type, dataclasses.Field, Any]] = {}
        self._required_dests: dict[str, str] = {}
        self._tuple_dests: set[str] = set()
        self._config_files_read: dict[str, dict[str, Any]] = {}  # --config value -> its mapping
        self._groups: dict[str, type] = {}  # dotted prefix of a nested group's flags -> its dataclass
        self.add_argument(
            "--config",
            action="append",
            default=[],
            metavar="FILE[:SECTION]",
            help="YAML file whose keys set defaults for the flags below (flags on the command line win); "
            "FILE:SECTION reads one section, e.g. params.yaml:train. May be given several times; later wins.",
        )

    # ------------------------------------------------------------------ building
    def add_arguments(self, dtype: type, title: str | None = None) -> None:
        """Add one flag per field of the dataclass ``dtype`` (idempotent per type)."""
        if not dataclasses.is_dataclass(dtype):
            raise TypeError(f"{dtype!r} is not a dataclass")
        if dtype in self._dataclass_types:
            return
        self._dataclass_types.append(dtype)
        group_title = title or f"{dtype.__qualname__.replace('.Params', '')} parameters"
        group = self.add_argument_group(group_title, description=_first_line(dtype.__doc__))
        hints = get_type_hints(dtype, include_extras=False, localns=_localns(dtype))
        existing = {a.dest for a in self._actions}
        for f in dataclasses.fields(dtype):
            if not f.init:
                continue
            tp = hints.get(f.name, str)
            _check_collision(dtype, f, tp, self._dest_fields.get(f.name), f.name in existing)
            if f.name in existing:
                continue  # one shared field (checked above): one flag fills both
            self._dest_fields[f.name] = (dtype, f, tp)  # a group's name too: a second one is a collision
            existing.add(f.name)
            if group_type(hints.get(f.name)) is not None:
                self._add_group(f.name, group_type(hints[f.name]))  # type: ignore[arg-type]
                continue
            self._dest_owner[f.name] = dtype
            self._add_field(group, f, tp)

    def _add_group(self, prefix: str, gtype: type) -> None:
        """The fields of the nested group ``gtype`` as dotted flags ``--PREFIX.FIELD`` (dest the same),
        in an argument group of their own; a group inside it nests one more prefix."""
        self._groups[prefix] = gtype
        group = self.add_argument_group(f"{prefix}.*", description=_first_line(gtype.__doc__))
        hints = get_type_hints(gtype, include_extras=False, localns=_localns(gtype))
        for f in dataclasses.fields(gtype):
            if not f.init:
                continue
            name = f"{prefix}.{f.name}"
            if group_type(hints.get(f.name)) is not None:
                self._add_group(name, group_type(hints[f.name]))  # type: ignore[arg-type]
                continue
            dotted = dataclasses.field(
                default=f.default, default_factory=f.default_factory, metadata=f.metadata
            )
            dotted.name = name
            self._dest_fields[name] = (
                gtype,
                dotted,
                hints.get(f.name, str),
            )  # its YAML value is type-checked
            self._add_field(group, dotted, hints.get(f.name, str))

    def _group_values(self, dtype: type, namespace: Namespace, used: set[str]) -> dict[str, Any]:
        """``dtype``'s nested groups built from their dotted dests (which go into ``used``)."""

        def build(prefix: str, gtype: type) -> Any:
            values: dict[str, Any] = {}
            for f in dataclasses.fields(gtype):
                name = f"{prefix}.{f.name}"
                if name in self._groups:
                    values[f.name] = build(name, self._groups[name])
                elif f.init and hasattr(namespace, name):
                    value = getattr(namespace, name)
                    values[f.name] = (
                        tuple(value) if name in self._tuple_dests and isinstance(value, list) else value
                    )
                    used.add(name)
            return gtype(**values)

        return {
            f.name: build(f.name, self._groups[f.name])
            for f in dataclasses.fields(dtype)
            if f.name in self._groups
        }

    def _check_moved_flags(self, argv: list[str]) -> None:
        """A flag of an earlier version (a ``MOVED_KEYS`` entry, or its ``--no_`` form) is a one-line
        error naming the new flag, not argparse's "unrecognized arguments"."""
        moved = {old: new for d in self._dataclass_types for old, new in getattr(d, "MOVED_KEYS", {}).items()}
        dests = {a.dest for a in self._actions}
        for arg in argv:
            if arg == "--":
                return
            name = arg[2:].partition("=")[0].replace("-", "_") if arg.startswith("--") else ""
            negated = name.startswith("no_") and name[3:] in moved
            old = name[3:] if negated else name
            if old in moved and old not in dests:
                new = f"--no_{moved[old]}" if negated else f"--{moved[old]}"
                self.error(f"flag --{name} moved to {new}")

    def _flatten_config(self, values: dict[Any, Any], spec: str) -> dict[Any, Any]:
        """A config mapping with each nested group's mapping turned into dotted keys (``neardup:
        {threshold: 0.9}`` -> ``neardup.threshold``); unknown nested keys and keys that moved (the
        dataclasses' ``MOVED_KEYS``) are one-line errors."""
        moved = {old: new for d in self._dataclass_types for old, new in getattr(d, "MOVED_KEYS", {}).items()}
        dests = {a.dest for a in self._actions}
        out: dict[Any, Any] = {}

        def walk(mapping: dict[Any, Any], prefix: str) -> None:
            for key, value in mapping.items():
                if not isinstance(key, str):
                    out[key] = value  # reported below, as for any key that is not a name
                    continue
                name = prefix + key.replace("-", "_")
                if name in self._groups and isinstance(value, dict):
                    walk(value, name + ".")
                elif name in moved and (name not in dests or name in self._groups):
                    raise ConfigError(moved_key_message(spec, name, moved[name]))
                elif name in self._groups:
                    valid = ", ".join(f.name for f in dataclasses.fields(self._groups[name]))
                    raise ConfigError(f"{spec}: {name} must be a mapping of {valid}; got {value!r}")
                elif prefix and name not in dests:
                    group = self._groups[prefix[:-1]]
                    valid = ", ".join(f.name for f in dataclasses.fields(group))
                    raise ConfigError(f"{spec}: unknown key {name!r}; valid keys of {prefix[:-1]}: {valid}")
                else:
                    out[name] = value

        walk(values, "")
        return out

    def _add_field(self, group: argparse._ArgumentGroup, f: dataclasses.Field, tp: Any) -> None:
        kwargs: dict[str, Any] = {"dest": f.name}
        help_text = (f.metadata.get("help", "") if f.metadata else "").replace("%", "%%")
        aliases = list(f.metadata.get("aliases", [])) if f.metadata else []
        flags = [f"--{f.name}", *aliases]
        dash = f"--{f.name.replace('_', '-')}"
        if dash not in flags:
            flags.append(dash)
        base, optional = _unwrap_optional(tp)
        if f.default is not dataclasses.MISSING:
            kwargs["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            kwargs["default"] = f.default_factory()  # type: ignore[misc]
        else:
            kwargs["default"] = None
            self._required_dests[f.name] = flags[0]
            help_text = f"{help_text} (required)".strip()
        origin = get_origin(base)
        if base is bool:
            kwargs.update(type=str2bool, nargs="?", const=True, metavar="true|false")
            group.add_argument(*flags, help=help_text, **kwargs)
            if kwargs.get("default") is True:
                group.add_argument(
                    f"--no_{f.name}", dest=f.name, action="store_false", help=f"Set --{f.name} to false."
                )
            return
        if origin in (list, Sequence, tuple) or base in (list, tuple):
            inner_args = [a for a in get_args(base) if a is not Ellipsis]
            inner = inner_args[0] if inner_args else str
            nargs: int | str = "*"
            if origin is tuple or base is tuple:
                self._tuple_dests.add(f.name)  # argparse collects lists; the dataclass wants a tuple
                if inner_args and Ellipsis not in get_args(base):
                    nargs = len(inner_args)
            kwargs.update(type=scalar_parser(inner), nargs=nargs)
        elif origin is typing.Literal:
            kwargs.update(type=scalar_parser(base), choices=list(get_args(base)))
        elif isinstance(base, type) and issubclass(base, enum.Enum):
            kwargs.update(
                type=scalar_parser(base),
                choices=list(base),
                metavar="{" + ",".join(str(m.value) for m in base) + "}",
            )
        else:
            kwargs["type"] = scalar_parser(base)
            if optional and f.name not in self._required_dests:
                help_text = help_text or "optional"
        group.add_argument(*flags, help=help_text, **kwargs)

    # ------------------------------------------------------------------ parsing
    def parse_args_into_dataclasses(
        self, args: Sequence[str] | None = None, allow_unknown: bool = False
    ) -> tuple[Any, ...]:
        argv = list(sys.argv[1:] if args is None else args)
        self._check_moved_flags(argv)
        self._apply_config_files(argv)
        if allow_unknown:
            namespace, unknown = self.parse_known_args(argv)
        else:
            namespace, unknown = self.parse_args(argv), []
        missing = [
            flag for dest, flag in self._required_dests.items() if getattr(namespace, dest, None) is None
        ]
        if missing:
            self.error(f"the following arguments are required: {', '.join(missing)}")
        outputs: list[Any] = []
        used: set[str] = set()
        for dtype in self._dataclass_types:
            names = [f.name for f in dataclasses.fields(dtype) if f.init]
            values = {n: getattr(namespace, n) for n in names if hasattr(namespace, n)}
            for n in self._tuple_dests & values.keys():
                if isinstance(values[n], list):
                    values[n] = tuple(values[n])
            used.update(values)
            values.update(self._group_values(dtype, namespace, used))
            try:
                outputs.append(dtype(**values))
            except (TypeError, ValueError) as exc:
                self.error(f"invalid {dtype.__qualname__}: {exc}")
        rest = Namespace(**{k: v for k, v in vars(namespace).items() if k not in used})
        if allow_unknown:
            rest._unknown = unknown
        return (*outputs, rest)

    def config_values(self, argv: Sequence[str]) -> dict[str, Any]:
        """The mapping the ``--config`` files of ``argv`` give, merged (a later file wins a key).

        The one place ``--config`` is read: code that needs its values before the parser is complete
        (``train`` takes ``task`` and ``include_package`` from it to know which params to add) asks the
        parser, and parsing then reuses what was read (each file once per parser)."""
        merged: dict[str, Any] = {}
        for _, values in self._config_files(argv):
            merged.update(values)
        return merged

    def _config_files(self, argv: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        pre = argparse.ArgumentParser(add_help=False)
        pre.add_argument("--config", action="append", default=[])
        known, _ = pre.parse_known_args(list(argv))
        for spec in known.config:
            if spec not in self._config_files_read:
                self._config_files_read[spec] = load_yaml_section(*split_config_arg(spec))
        return [(spec, self._config_files_read[spec]) for spec in known.config]

    def _apply_config_files(self, argv: list[str]) -> None:
        files = self._config_files(argv)
        if not files:
            return
        actions = {a.dest: a for a in self._actions if a.dest not in ("help", "config")}
        defaults: dict[str, Any] = {}
        for spec, values in files:
            for key, value in self._flatten_config(values, spec).items():
                if not isinstance(key, str):
                    raise ConfigError(
                        f"{spec}: key {key!r} is not a name (YAML reads bare on/off/yes/no as booleans); "
                        "quote it or use the flag's name"
                    )
                dest = key.replace("-", "_")
                if dest not in actions:
                    valid = ", ".join(sorted(actions))
                    raise ConfigError(f"{spec}: unknown key {key!r} for this command; valid keys: {valid}")
                if dest in self._dest_fields:  # plain arguments pass as before: lightning.Trainer's
                    # pass-through flags take lists their flag type cannot say (devices: [0, 1])
                    _, f, tp = self._dest_fields[dest]
                    _check_value_type(value, tp, spec, key, f.metadata.get("mapping_ok", False))
                defaults[dest] = self._convert_config_value(actions[dest], value, spec, key)
        self.set_defaults(**defaults)

    @staticmethod
    def _convert_config_value(action: argparse.Action, value: Any, spec: str, key: str) -> Any:
        if value is None or action.type is None:
            return value
        try:
            if isinstance(value, list):
                return [action.type(v) if isinstance(v, str) else v for v in value]
            if isinstance(value, str | int | float | bool) and not isinstance(value, dict):
                converted = action.type(value if isinstance(value, str) else str(value))
                if action.choices is not None and converted not in action.choices:
                    raise ValueError(f"must be one of {list(action.choices)}")
                return converted
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ConfigError(f"{spec}: bad value for {key!r}: {value!r} ({exc})") from None
        return value

    def error(self, message: str) -> typing.NoReturn:  # one line, no usage dump wall
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


_SCALARS = (str, int, float, bool, Path)


def _is_scalar_type(tp: Any) -> bool:
    """Whether a YAML value for ``tp`` must be one value (not a list or mapping): the flag types
    :func:`scalar_parser` converts, and unions of them."""
    base, _ = _unwrap_optional(tp)
    origin = get_origin(base)
    if origin in (Union, types.UnionType):
        return all(_is_scalar_type(a) for a in get_args(base))
    if origin is typing.Literal or base in _SCALARS:
        return True
    return isinstance(base, type) and issubclass(base, enum.Enum)


def _yaml_kind(value: Any) -> str | None:
    """ "a list" / "a mapping" for a YAML container, else None."""
    if isinstance(value, list | tuple):
        return "a list"
    return "a mapping" if isinstance(value, dict) else None


def _check_value_type(value: Any, tp: Any, where: str, key: str, mapping_ok: bool = False) -> None:
    """Refuse a YAML list or mapping where ``tp`` (a field's annotation) wants one value, a mapping where
    it wants a list, and a list of lists or mappings where it wants a list of values. Why here: a container let through fails deep in a stage (``TypeError: '<' not
    supported between 'list' and 'int'``), far from the line of YAML that caused it."""
    kind = _yaml_kind(value)
    if kind is None:
        return
    if _is_scalar_type(tp):
        expected = _expected_name(tp)
        raise ConfigError(
            f"{where}: key {key!r} must be {expected}, got {kind} ({_short(value)}); write a single value"
        )
    base, _ = _unwrap_optional(tp)
    if get_origin(base) not in (list, tuple, Sequence) and base not in (list, tuple):
        return  # mappings, nested params, Any: not a flag type this parser checks
    if kind == "a mapping" and mapping_ok:
        return  # the field converts a mapping itself (metadata {"mapping_ok": True})
    if kind == "a mapping":
        raise ConfigError(
            f"{where}: key {key!r} must be list, got a mapping ({_short(value)}); write a YAML list [a, b]"
        )
    inner = [a for a in get_args(base) if a is not Ellipsis]
    for item in value:
        item_kind = _yaml_kind(item)
        if item_kind is not None and (not inner or _is_scalar_type(inner[0])):
            expected = _expected_name(inner[0]) if inner else "one value"
            raise ConfigError(
                f"{where}: key {key!r} must be a list of {expected}, got {item_kind} ({_short(item)}) "
                "as an item; write a flat list [a, b]"
            )


def _expected_name(tp: Any) -> str:
    base, _ = _unwrap_optional(tp)
    if get_origin(base) in (Union, types.UnionType):
        return "|".join(_type_name(a) for a in get_args(base))
    return _type_name(base)


def _check_value_types(dtype: type, values: dict[str, Any], where: str) -> None:
    """:func:`_check_value_type` for each key of ``values`` that is a field of the dataclass ``dtype``."""
    hints = get_type_hints(dtype, include_extras=False, localns=_localns(dtype))
    for f in dataclasses.fields(dtype):
        if f.name in values:
            _check_value_type(
                values[f.name], hints.get(f.name, Any), where, f.name, f.metadata.get("mapping_ok", False)
            )


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_collision(
    dtype: type,
    f: dataclasses.Field,
    tp: Any,
    earlier: tuple[type, dataclasses.Field, Any] | None,
    taken: bool,
) -> None:
    """Refuse a field whose name the parser already has, unless both are one shared field.

    ``earlier``: the dataclass and field that registered the name (None if a plain argument did, or
    nobody); ``taken``: whether the name is an argument of the parser already."""
    if not taken:
        return
    where = f"{dtype.__module__}.{dtype.__qualname__}"
    if earlier is None:
        raise ConfigError(
            f"params field {f.name!r} of {where} is also a plain argument of this command (--{f.name}); "
            "rename the field"
        )
    owner, other, other_tp = earlier
    if owner is dtype:
        return
    first = f"{owner.__module__}.{owner.__qualname__}"
    both_shared = _is_shared(f) and _is_shared(other)
    if both_shared and tp == other_tp and _default_of(f) == _default_of(other):
        return
    why = (
        "both are marked shared but their types or defaults differ; make them one field (e.g. from one "
        "function returning the field)"
        if both_shared
        else 'one flag would fill both; rename one, or declare one field with metadata={"shared": True} '
        "(same type and default) in both"
    )
    raise ConfigError(f"params field {f.name!r} is declared by both {first} and {where}: {why}")


def _is_shared(f: dataclasses.Field) -> bool:
    return bool(f.metadata and f.metadata.get("shared"))


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _first_line(doc: str | None) -> str | None:
    if not doc:
        return None
    line = doc.strip().splitlines()[0].strip()
    # dataclasses autogenerate "Params(a: int = 1, ...)" docstrings: not useful as help
    return None if line.startswith(("Params(", "Params (")) else line


def _localns(dtype: type) -> dict[str, Any]:
    module = sys.modules.get(dtype.__module__)
    ns = dict(vars(module)) if module else {}
    ns.setdefault("Optional", typing.Optional)
    return ns
