"""Immutable JSON values: ``FrozenDict``, tuples, and ``freeze()`` that builds them.

Messages hold only JSON-representable, immutable data so that a stage can never change what
another stage sees. ``FrozenDict`` subclasses ``dict`` on purpose: every JSON encoder
(``json``, ``orjson``) serializes it natively, without a conversion pass on the hot path.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NoReturn

from mixpanel_core.errors import NotJSONError, Problem

JSONValue = Any
"""A value made of str, int, float, bool, None, FrozenDict and tuple."""

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
"""How the official SDK's ``DatetimeSerializer`` writes datetimes; we write them the same."""


class FrozenDict(dict[str, Any]):
    """A ``dict`` that refuses every change after construction.

    It holds only frozen values (str, numbers, bool, None, tuples, FrozenDicts): build one with
    ``freeze`` or from another FrozenDict (``merged``, ``without``).
    """

    __slots__ = ()

    def _immutable(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("FrozenDict is immutable; build a new one (see attrs.evolve)")

    __setitem__ = __delitem__ = _immutable
    clear = pop = popitem = setdefault = update = _immutable
    __ior__ = _immutable

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(self.items()))

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[type[FrozenDict], tuple[dict[str, Any]]]:
        # dict's own pickling refills the object item by item, which this class refuses.
        return (FrozenDict, (dict(self),))

    def merged(self, changes: Mapping[str, Any]) -> FrozenDict:
        """A copy with ``changes`` on top; existing keys keep their position.

        A value of ``changes`` that is not frozen yet is frozen (``freeze``, named by its key:
        a NaN or a set raises ``NotJSONError``): a plugin's ``merged({"n": float("nan")})``
        was sent as ``null``, and a plain dict failed validation as "must be an object".
        """
        out = FrozenDict(self)
        # the base method: this copy is not shared yet
        dict.update(out, {key: frozen(value, key) for key, value in changes.items()})
        return out

    def without(self, keys: Iterable[str]) -> FrozenDict:
        """A copy without ``keys``."""
        drop = set(keys)
        return FrozenDict({k: v for k, v in self.items() if k not in drop})


EMPTY = FrozenDict()

Fallback = Callable[[object], JSONValue]
"""Turns a value JSON cannot carry into one it can (the official ``serializer`` hook)."""


def format_datetime(value: object) -> JSONValue:
    """The default fallback: datetimes as the official ``DatetimeSerializer`` writes them."""
    if isinstance(value, datetime.datetime):
        return value.strftime(DATETIME_FORMAT)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _no_fallback(value: object) -> JSONValue:
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_STR_ONLY = frozenset({str})
_PLAIN = frozenset({str, int, bool, type(None), FrozenDict})
"""Types taken as they are (floats are not: NaN and the infinities must be refused)."""


def frozen(value: object, path: str) -> JSONValue:
    """``value`` if it is frozen already (a plain value, a finite float, a ``FrozenDict``),
    else ``freeze(value, path)``: the check of a value a plugin adds, cheap for frozen ones."""
    kind = type(value)
    if kind in _PLAIN or (kind is float and value - value == 0.0):  # type: ignore[operator]
        return value
    return freeze(value, path)


def unfrozen_part(record: Mapping[str, Any]) -> str | None:
    """The part of ``record`` that is a container not frozen (the record itself, or one of
    its values: a plugin's ``attrs.evolve(message, record={...})`` of plain dicts), or None.
    Only the top level is looked at: what is below a ``FrozenDict`` is frozen, as every way of
    building one (``freeze``, ``merged``, ``without``) freezes or keeps frozen values."""
    if not isinstance(record, FrozenDict):
        return f"record (a {type(record).__name__})"
    for key, value in record.items():
        # A tuple of types, not ``dict | list | set``: isinstance takes a union several
        # times slower, and this runs for every event an enricher changes.
        if isinstance(value, _MUTABLE) and not isinstance(value, FrozenDict):
            return f"record[{key!r}] (a {type(value).__name__})"
    return None


_MUTABLE = (dict, list, set)


def is_flat(value: Mapping[Any, Any]) -> bool:
    """Whether ``value`` has string keys and plain scalar values only (finite floats).

    This is the common case, and ``FrozenDict(value)`` then freezes it with no walk at all.
    """
    for item in value.values():
        kind = type(item)
        # ``x - x == 0.0`` is false exactly for NaN and the infinities.
        if kind is str or kind is int or item is None or kind is bool:
            continue
        if kind is float and item - item == 0.0:
            continue
        return False
    return _STR_ONLY.issuperset(map(type, value))


def freeze(value: object, path: str, fallback: Fallback | None = None) -> JSONValue:
    """Return an immutable copy of ``value``, or raise ``NotJSONError`` naming the fields.

    ``path`` names ``value`` in those errors (``""``: the fields are named from its keys).
    ``fallback`` converts what JSON cannot carry into plain JSON or raises ``TypeError``; the
    default, ``format_datetime``, writes datetimes as the official SDK does and refuses the rest.
    Keys are written as ``json`` writes them: numbers, booleans and None become strings.

    ``value`` itself may be any mapping (a call's properties, which the official client
    ``update()``s into a dict). Inside it, only dicts are objects and only lists and tuples
    arrays, as for ``json``: another mapping (``MappingProxyType``, ``UserDict``) goes to
    ``fallback``, so a serializer that converts it sends what the official client sends.
    """
    problems: list[Problem] = []
    if not isinstance(value, dict) and isinstance(value, Mapping):
        value = dict(value)
    try:
        frozen = _freeze(value, path, fallback, problems)
    except RecursionError:
        rule = "holds itself (or nests thousands of levels deep); JSON cannot carry it"
        raise NotJSONError([Problem(path or "record", rule)]) from None
    if problems:
        raise NotJSONError(problems) from next((p.cause for p in problems if p.cause), None)
    return frozen


def _inside(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def json_key(key: object) -> str | None:
    """``key`` as ``json.dumps`` writes an object key, or None when JSON has no spelling for it."""
    if isinstance(key, str):
        return str.__str__(key)
    if key is True or key is False or key is None:
        return "true" if key else "false" if key is False else "null"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float) and math.isfinite(key):
        return float.__repr__(key)
    return None


def _freeze(
    value: object, path: str, fallback: Fallback | None, problems: list[Problem]
) -> JSONValue:
    kind = type(value)
    # A FrozenDict is only ever built from frozen values (freeze, merged, without), so it is
    # taken as it is: that is what makes rebuilding a record from frozen parts cheap.
    if kind is str or kind is int or kind is bool or value is None or kind is FrozenDict:
        return value
    if kind is float:
        if math.isfinite(value):  # type: ignore[arg-type]
            return value
        problems.append(Problem(path, f"{value!r} is not a finite number; JSON cannot carry it"))
        return None
    if kind is dict or isinstance(value, dict):
        mapping: dict[Any, Any] = value  # type: ignore[assignment]
        if kind is dict and is_flat(mapping):
            return FrozenDict(mapping)  # the common case: nothing nested, nothing to convert
        if kind is not dict and isinstance(value, FrozenDict):
            # A subclass (config's RawTable) holds frozen values too: taken as it is, like a
            # FrozenDict. Tested here, off the path of the usual values and dicts.
            return value
        out = {}
        for key, item in mapping.items():
            name = key if type(key) is str else json_key(key)
            if name is None:
                problems.append(
                    Problem(
                        f"{path}[{key!r}]",
                        f"a {type(key).__name__} key; keys must be strings, finite numbers, "
                        "booleans or None",
                    )
                )
            elif type(item) in _PLAIN:
                out[name] = item  # no path string built for the usual values
            else:
                out[name] = _freeze(item, _inside(path, name), fallback, problems)
        return FrozenDict(out)
    if kind is list or kind is tuple or isinstance(value, list | tuple):
        items: list[Any] | tuple[Any, ...] = value  # type: ignore[assignment]
        return tuple(
            item if type(item) in _PLAIN else _freeze(item, f"{path}[{i}]", fallback, problems)
            for i, item in enumerate(items)
        )
    # Subclasses (str and int enums and the like) become their plain value, as json writes
    # them: through the base class's own method, as a subclass's __int__ or __float__ may
    # answer something else (json writes int.__repr__ of the number, not int(value)).
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return _freeze(float.__float__(value), path, fallback, problems)
    try:
        converted = (fallback or format_datetime)(value)
    except (TypeError, ValueError) as exc:
        # A datetime is only an option with the default fallback (a serializer may drop it).
        usable = "list, dict or datetime" if fallback in (None, format_datetime) else "list or dict"
        rule = f"a {kind.__name__} cannot be carried by JSON; use str, number, bool, None, {usable}"
        if isinstance(exc, ValueError):
            # Not "JSON cannot carry it" (a TypeError says that) but the serializer's own
            # refusal of this value. Its words say why, but may quote the value, and the
            # rule is logged and reported: they are the error's cause (see freeze).
            rule = f"the serializer refused a {kind.__name__} (ValueError: see the cause)"
            problems.append(Problem(path, rule, exc))
        else:
            problems.append(Problem(path, rule))
        return None
    # What a fallback returns must itself be plain JSON: no second round of conversion.
    return _freeze(converted, path, _no_fallback, problems)


_CONTAINERS = frozenset({dict, list})


def freeze_parsed(value: Any) -> JSONValue:
    """Freeze what ``wire.loads`` returned, converting dicts and lists and checking nothing.

    Parsed JSON has string keys and finite numbers only (the parser refuses NaN and the
    infinities), so ``freeze``'s checks cannot fail on it: skipping them makes decoding a
    record (the forwarder's and the multiprocessing sender's hot path) about three times
    cheaper. ``value`` is consumed: its dicts are updated in place before they are frozen.
    """
    kind = type(value)
    if kind is dict:
        # One C-speed scan tells whether anything is nested (usually not: flat properties).
        if not _CONTAINERS.isdisjoint(map(type, value.values())):
            for key, item in value.items():
                if type(item) is dict or type(item) is list:
                    value[key] = freeze_parsed(item)  # replacing a value keeps the size
        return FrozenDict(value)
    if kind is list:
        return tuple([freeze_parsed(item) for item in value])
    return value


def thaw(value: JSONValue) -> Any:
    """A plain, mutable copy (dicts and lists) of a frozen value."""
    if isinstance(value, dict):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
