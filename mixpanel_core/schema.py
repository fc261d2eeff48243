"""Reading TOML tables into frozen attrs classes: one mechanism for every config section.

A config class is an ``attrs.frozen`` class whose fields are declared with ``setting()``; its
type hints say what each key accepts and the ``doc`` says what it means (the configuration
reference is checked against these). ``read(cls, table, path)`` rejects unknown keys, missing
required keys and wrong types with a ``ConfigError`` that names the full key path.

``check_seconds`` is the one bound of every duration key (timeouts, lingers, budgets,
deadlines): finite, and at most ``MAX_SECONDS``.

TOML's dates, times and date-times reach readers as ``TomlDateText``: their text, marked. A key
taking a string refuses one, naming the key; a key taking any JSON value takes a date-time's
text, as the official SDK writes datetimes.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import re
import types
import typing
from collections.abc import Collection, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from mixpanel_core.errors import ConfigError, ValidationError
from mixpanel_core.frozen import FrozenDict, freeze
from mixpanel_core.secrets import Secret

T = TypeVar("T")

_NOTHING: Any = attrs.NOTHING

MAX_SECONDS = 86_400
"""The longest duration any option takes: a day. Generous for any real timeout, and far below
what ``threading`` and ``socket`` waits accept (``threading.TIMEOUT_MAX``), so a bounded
value never overflows a wait, nor a deadline computed from it, after records were sent."""


def check_seconds(key: str, value: float, *, zero: bool = True) -> None:
    """Raise ``ValueError`` naming ``key`` unless ``value`` is a number of seconds from 0 (above
    0 when ``zero`` is false) to ``MAX_SECONDS``.

    Every option class checks its durations with this, whether it was read from a file or
    built in Python. NaN fails every comparison, so it is refused too.
    """
    low = "0 or more" if zero else "greater than 0"
    if not ((value >= 0 if zero else value > 0) and value <= MAX_SECONDS):
        raise ValueError(
            f"{key}: must be {low} and at most {MAX_SECONDS} seconds (a day), not {value!r}"
        )


class TomlDateText(str):
    """The text of a TOML date, time or date-time: ``1979-05-27T07:32:00`` (as the official SDK
    writes datetimes, without offset or fraction: one with an offset in UTC, as Mixpanel
    reads it), ``1979-05-27``, ``07:32:00``.

    A raw table (``config.RawTable``) holds JSON values only, so TOML's dates arrive in it as
    text; the mark keeps where the text came from, so that a key taking a string refuses it
    (an unquoted password or client id that TOML read as a date would otherwise change
    without a word) and so does a kafka-python option table. To everything else it is a
    ``str``: ``==``, ``hash``, ``json``, ``orjson``, ``str()``; ``freeze`` makes it a plain
    one, and pickling (a spawned process) keeps the mark.
    """

    __slots__ = ()

    @classmethod
    def of(cls, value: datetime.date | datetime.time) -> TomlDateText:
        """The marked text of a date, time or date-time as ``tomllib`` gives it."""
        if isinstance(value, datetime.datetime):  # a datetime is a date: it is tested first
            if value.tzinfo is not None:
                # Mixpanel reads a date-time without offset as UTC: 07:32+02:00 is 05:32.
                # One before the year 1 or after 9999 in UTC keeps its offset: exact, if unusual.
                with contextlib.suppress(OverflowError):
                    value = value.astimezone(datetime.UTC).replace(tzinfo=None)
            # The official SDK's format (DATETIME_FORMAT); isoformat writes the same, but also
            # a year before 1000 in four digits, where strftime's %Y does not (0999, not 999).
            return cls(value.isoformat(timespec="seconds"))
        return cls(value.isoformat())

    @property
    def toml_type(self) -> str:
        """``a TOML date-time``, ``a TOML date`` or ``a TOML time``, for messages."""
        if "T" in self:
            return "a TOML date-time"
        return "a TOML time" if ":" in self else "a TOML date"


def setting(default: Any = _NOTHING, *, doc: str, factory: Any = None, shown: Any = True) -> Any:
    """Declare a config key: its default (none means required) and what it is for;
    ``shown``: how its value appears in the ``repr`` (attrs' ``repr``)."""
    if factory is not None:
        return attrs.field(factory=factory, metadata={"doc": doc}, repr=shown)
    return attrs.field(default=default, metadata={"doc": doc}, repr=shown)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def describe(cls: type) -> list[tuple[str, str, str, str]]:
    """``(key, type, default, doc)`` for every key of a config class (for the reference)."""
    rows = []
    for field in attrs.fields(cls):
        hint = _hints(cls)[field.name]
        if field.default is attrs.NOTHING:
            default = "required"
        elif isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            default = toml_value(field.default.factory())
        else:
            default = toml_value(field.default)
        rows.append((field.name, type_name(hint), default, field.metadata.get("doc", "")))
    return rows


def toml_value(value: object) -> str:
    """A default as the reference writes it: TOML syntax, ``none`` for no value."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def type_name(hint: Any) -> str:
    """A short, TOML-flavoured name of a type hint."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (types.UnionType, typing.Union):
        return " | ".join(type_name(a) for a in args if a is not type(None))
    if _is_list_hint(hint):
        return f"list of {type_name(_item_hint(hint))}"
    if hint is Secret:
        return "string (secret)"
    if origin in (dict, Mapping) or hint is FrozenDict:
        return "table"
    names = {str: "string", int: "integer", float: "number", bool: "boolean"}
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def read(cls: type[T], table: object, path: str) -> T:
    """Build ``cls`` from a TOML ``table`` found at key ``path``."""
    if not isinstance(table, Mapping):
        raise ConfigError(f"{path}: must be a table, not {toml_type(table)}")
    fields = {f.name: f for f in attrs.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(table) - set(fields))
    if unknown:
        known = (
            f"the keys of [{path}] are: {', '.join(fields)}" if fields else f"[{path}] takes none"
        )
        raise ConfigError(f"{path}.{unknown[0]}: unknown key; {known}")
    values = {}
    for name, field in fields.items():
        if name in table:
            hint = _hints(cls)[name]  # type: ignore[arg-type]
            values[field.alias] = convert(hint, table[name], f"{path}.{name}")
        elif field.default is attrs.NOTHING:
            raise ConfigError(f"{path}.{name}: required key is missing")
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise key_error(path, exc, fields) from exc


def key_error(path: str, error: Exception, keys: Collection[str]) -> ConfigError:
    """The ``ConfigError`` of a check of the table at ``path`` that raised ``error``. A check
    that names the key it refuses ("linger: must be ...", "bootstrap_servers[1]: ...",
    "urls.trak: ...") is said at that key's path, as every other error of a key is:
    ``transports.out.linger: must be``.
    """
    key, named, rule = str(error).partition(": ")
    if named and re.split(r"[.\[]", key, maxsplit=1)[0] in keys:
        return ConfigError(f"{path}.{key}: {rule}")
    return ConfigError(f"{path}: {error}")


def freeze_setting(value: object, path: str) -> Any:
    """``value`` as a frozen JSON value, for a key taking any (a table of properties).

    A TOML date-time becomes its plain text, as the official SDK writes datetimes; a TOML date
    or time, ``nan`` and ``inf`` (which JSON cannot carry) are a ``ConfigError`` naming the
    key: it is the file that is wrong, not a message. Raw tables become plain ``FrozenDict``s.
    """
    try:
        return freeze(_json_setting(value, path), path)
    except ValidationError as exc:
        raise ConfigError("; ".join(str(problem) for problem in exc.problems)) from None


def _json_setting(value: object, path: str) -> object:
    if isinstance(value, datetime.date | datetime.time):
        value = TomlDateText.of(value)
    if isinstance(value, TomlDateText):
        if value.toml_type != "a TOML date-time":
            raise ConfigError(
                f"{path}: {value.toml_type} cannot be carried by JSON; quote it to give a "
                "string, or give a date-time"
            )
        return str(value)
    if isinstance(value, Mapping):
        return {key: _json_setting(item, f"{path}.{key}") for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_setting(item, f"{path}[{i}]") for i, item in enumerate(value)]
    return value


def convert(hint: Any, value: object, path: str) -> Any:
    """Check ``value`` against ``hint`` and convert it (lists to tuples, tables to classes)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if isinstance(value, datetime.date | datetime.time):
        # A table read straight from the file ([mixpanel], [[routes]]) holds TOML's date
        # objects; raw tables hold their marked text. One form from here on.
        value = TomlDateText.of(value)
    if hint is Any:
        return freeze_setting(value, path)
    if origin is typing.Literal:
        if value in args and not isinstance(value, TomlDateText):
            return value
        shown = value.toml_type if isinstance(value, TomlDateText) else repr(value)
        raise ConfigError(f"{path}: must be one of {', '.join(repr(a) for a in args)}, not {shown}")
    if origin in (types.UnionType, typing.Union):
        shaped: list[ConfigError] = []
        for option in args:
            if option is type(None):
                continue
            try:
                return convert(option, value, path)
            except ConfigError as exc:
                if _same_shape(option, value):
                    shaped.append(exc)
        if len(shaped) == 1:
            # Only one option takes this kind of value (a list, for "string | list of
            # string"): what is wrong is inside it, and its error names the item and its rule.
            raise shaped[0]
        raise ConfigError(f"{path}: must be {_expected(hint)}, not {toml_type(value)}")
    if _is_list_hint(hint):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{path}: must be a list, not {toml_type(value)}")
        items = [convert(_item_hint(hint), item, f"{path}[{i}]") for i, item in enumerate(value)]
        # ``list[X]`` is what its class asked for; every other list form is frozen.
        return items if (origin or hint) is list else tuple(items)
    if origin in (dict, Mapping) or hint is FrozenDict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: must be a table, not {toml_type(value)}")
        if hint is FrozenDict and isinstance(value, FrozenDict):
            # A table handed on as the file gave it (kafka-python's options): already frozen,
            # and its reader checks the values, TOML dates included (client_options in
            # kafka/options.py). A raw table stays one, showing only its keys.
            return value
        item_hint = args[1] if args else Any
        return FrozenDict({k: convert(item_hint, v, f"{path}.{k}") for k, v in value.items()})
    if attrs.has(hint) and hint is not Secret:
        return read(hint, value, path)
    return _scalar(hint, value, path)


_LIST_ORIGINS = (tuple, list, Sequence)


def _is_list_hint(hint: Any) -> bool:
    """Whether ``hint`` takes a TOML list: ``tuple[X, ...]`` (as the built-in options do),
    ``list[X]`` or ``Sequence[X]``, or bare ``tuple`` or ``list`` (of any values)."""
    return (typing.get_origin(hint) or hint) in _LIST_ORIGINS


def _item_hint(hint: Any) -> Any:
    """What each item of a list ``hint`` takes (``Any`` for a bare ``list``)."""
    args = typing.get_args(hint)
    return args[0] if args else Any


def _scalar(hint: Any, value: object, path: str) -> Any:
    # A TOML date's text is a str to Python, but the file did not give a string.
    if hint is Secret:
        if isinstance(value, str) and not isinstance(value, TomlDateText):
            return Secret(value)
        raise ConfigError(f"{path}: must be a string, not {toml_type(value)}")
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        try:
            return float(value)
        except OverflowError:
            raise ConfigError(
                f"{path}: must be a number; this integer is too large for one (over 1.8e308)"
            ) from None
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{path}: must be an integer, not a boolean")
    if not isinstance(hint, type) or typing.get_origin(hint) is not None:
        # The class's own hint is what is wrong (``set[str]``): said to its author, not as a
        # rule the file broke.
        raise TypeError(
            f"{path}: the option's type hint {hint!r} is not one read() takes: use str, int, "
            "float, bool, Secret, tuple[X, ...], list[X], Mapping[str, X], Any, a Literal, a "
            "union of these, or an attrs class"
        )
    if isinstance(value, hint) and not isinstance(value, TomlDateText):
        return value
    raise ConfigError(f"{path}: must be {_expected(hint)}, not {toml_type(value)}")


def _expected(hint: Any) -> str:
    """What an error says ``hint`` takes ("a string or a list of strings"), where a table of
    options shows its bare ``type_name`` ("string | list of string")."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_expected(a) for a in args if a is not type(None))
    if _is_list_hint(hint) and typing.get_origin(_item_hint(hint)) is None:
        return f"a list of {type_name(_item_hint(hint))}s"
    name = type_name(hint)
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _same_shape(hint: Any, value: object) -> bool:
    """Whether ``value`` is the kind of TOML value ``hint`` takes: a list for a list, a table
    for a table or a config class, an integer for a number (one too large for it). Other
    scalars are never the same shape: a wrong one is a wrong type.
    """
    if hint is float:
        return isinstance(value, int) and not isinstance(value, bool)
    origin = typing.get_origin(hint)
    if _is_list_hint(hint):
        return isinstance(value, list | tuple)
    if origin in (dict, Mapping) or hint is FrozenDict or attrs.has(hint):
        return isinstance(value, Mapping)
    return False


def toml_type(value: object) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, TomlDateText):
        return value.toml_type
    return names.get(type(value), type(value).__name__)
