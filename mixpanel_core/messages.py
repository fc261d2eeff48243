"""The immutable messages that flow through the pipeline, one class per kind.

A message holds its complete wire record (exactly what the official SDK would send) as a
``FrozenDict``; typed properties read the fields that matter to plugins and transports. A stage
that wants a change builds a new message (``attrs.evolve`` or the ``with_*`` helpers).

=============  ============  ==========  ==========================================
class          ``kind``      endpoint    made by
=============  ============  ==========  ==========================================
Event          event         track       ``track``
ImportEvent    import        import      ``import_data``
Alias          alias         track       ``alias``
Merge          merge         import      ``merge``
PeopleUpdate   people        engage      ``people_*``
GroupUpdate    group         groups      ``group_*``
=============  ============  ==========  ==========================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import attrs

from mixpanel_core.api_limits import GROUP_OPERATIONS, PROFILE_OPERATIONS
from mixpanel_core.errors import Problem, ValidationError
from mixpanel_core.frozen import EMPTY, FrozenDict, freeze, freeze_parsed, frozen
from mixpanel_core.secrets import Secret
from mixpanel_core.wire import dumps, loads

Endpoint = Literal["track", "import", "engage", "groups"]
ENDPOINTS: tuple[Endpoint, ...] = ("track", "import", "engage", "groups")
KINDS = ("event", "import", "alias", "merge", "people", "group")


@attrs.frozen
class ImportAuth:
    """Per-call legacy credentials of ``import_data``/``merge`` (deprecated by Mixpanel)."""

    api_key: str | None = None
    api_secret: Secret | None = None


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class Message:
    """The base of every message: a frozen wire record and where it goes."""

    kind: ClassVar[str]
    endpoint: ClassVar[Endpoint]

    record: FrozenDict
    auth: ImportAuth | None = attrs.field(default=None, repr=False, eq=False)
    _json: bytes | None = attrs.field(default=None, init=False, repr=False, eq=False)

    def __init__(self, record: FrozenDict, auth: ImportAuth | None = None) -> None:
        # What attrs would generate, through the slots' own setters: one message is made per
        # tracked event, and this costs half as much as the generated version.
        _set_record(self, record)
        _set_auth(self, auth)
        _set_json(self, None)

    @property
    def call_secret(self) -> Secret | None:
        """The API secret this message came with (``import_data(..., api_secret=...)``), if
        any: what is said about sending it may quote it (``Redactor.with_call``)."""
        auth = self.auth
        return None if auth is None else auth.api_secret

    def without_call_secret(self) -> Message:
        """This message without its ``call_secret`` (its ``api_key`` kept), for an error
        that leaves the process: the same message when it has none."""
        auth = self.auth
        if auth is None or auth.api_secret is None:
            return self
        return self.__class__(self.record, attrs.evolve(auth, api_secret=None))

    def json(self) -> bytes:
        """The record as compact JSON; encoded once, since the record cannot change.

        Validation measures it and transports send it: one encoding serves both.
        """
        data = self._json
        if data is None:
            data = dumps(self.record)
            # A cache of derived bytes, not a change of value: the frozen check is bypassed.
            _set_json(self, data)
        return data

    @property
    def insert_id(self) -> str | None:
        """The ``$insert_id`` Mixpanel deduplicates on, for events; ``None`` otherwise."""
        return None

    @property
    def key(self) -> str:
        """The identity whose messages must stay in order (Kafka's record key)."""
        raise NotImplementedError

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Message:
        """Rebuild the message a wire record came from (the forwarder's decoder)."""
        frozen = freeze(record, cls.kind)
        if not isinstance(frozen, FrozenDict):
            raise ValidationError([Problem(cls.kind, "a record must be a JSON object")])
        message = cls(frozen)
        message.check_shape()
        return message

    def check_shape(self) -> None:
        """Raise ``ValidationError`` if the record lacks what its kind must have."""


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class Event(Message):
    """An event for ``/track``: ``{"event": name, "properties": {...}}`` plus any ``meta``."""

    kind: ClassVar[str] = "event"
    endpoint: ClassVar[Endpoint] = "track"

    @property
    def name(self) -> str:
        name: str = self.record["event"]
        return name

    @property
    def properties(self) -> FrozenDict:
        props: FrozenDict = self.record.get("properties", EMPTY)
        return props

    @property
    def distinct_id(self) -> Any:
        return self.properties.get("distinct_id")

    @property
    def time(self) -> Any:
        return self.properties.get("time")

    @property
    def insert_id(self) -> str | None:
        value = self.properties.get("$insert_id")
        return value if isinstance(value, str) else None

    @property
    def key(self) -> str:
        return str(self.distinct_id or "")

    def with_properties(self, changes: Mapping[str, Any]) -> Event:
        """A copy whose properties have ``changes`` applied (existing keys keep their place).

        ``changes`` is checked and frozen as a call's properties are: a value JSON cannot
        carry (NaN, a set, ...) raises ``NotJSONError`` naming it, rather than reaching the
        wire changed (orjson would write NaN as null).
        """
        frozen: FrozenDict = freeze(changes, "properties")
        return self.with_property_values(self.properties.merged(frozen))

    def with_property_values(self, properties: FrozenDict) -> Event:
        """A copy with ``properties`` replacing the whole properties object."""
        # Equivalent to attrs.evolve, which costs a microsecond more on the hot path; and to
        # record.merged({"properties": ...}), less the building and walking of that dict.
        record = FrozenDict(self.record)
        # the base method: this copy is not shared yet
        dict.__setitem__(record, "properties", frozen(properties, "properties"))
        return self.__class__(record, self.auth)

    def check_shape(self) -> None:
        problems = []
        if not isinstance(self.record.get("event"), str):
            problems.append(Problem("event", "must be a string naming the event"))
        if not isinstance(self.record.get("properties"), FrozenDict):
            problems.append(Problem("properties", "must be an object"))
        if problems:
            raise ValidationError(problems, self.kind)


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class ImportEvent(Event):
    """An event for ``/import``: any age after 1971, with the caller's timestamp."""

    kind: ClassVar[str] = "import"
    endpoint: ClassVar[Endpoint] = "import"


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class Alias(Event):
    """``$create_alias``: maps ``alias`` onto the original ``distinct_id`` (via ``/track``)."""

    kind: ClassVar[str] = "alias"
    endpoint: ClassVar[Endpoint] = "track"


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class Merge(Event):
    """``$merge``: merges the two ids in ``properties.$distinct_ids`` (via ``/import``)."""

    kind: ClassVar[str] = "merge"
    endpoint: ClassVar[Endpoint] = "import"

    @property
    def key(self) -> str:
        ids = self.properties.get("$distinct_ids") or ("",)
        return str(ids[0])


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class PeopleUpdate(Message):
    """A user profile update for ``/engage``: ``$token``, ``$time``, ``$distinct_id``, one op."""

    kind: ClassVar[str] = "people"
    endpoint: ClassVar[Endpoint] = "engage"
    operations: ClassVar[tuple[str, ...]] = PROFILE_OPERATIONS
    """The operations Mixpanel takes in an update of this kind."""

    @property
    def distinct_id(self) -> Any:
        return self.record.get("$distinct_id")

    @property
    def operation(self) -> str | None:
        """The first operation of this kind in the record (``$set``, ``$unset``, ...)."""
        return next((op for op in self.operations if op in self.record), None)

    @property
    def key(self) -> str:
        return str(self.distinct_id or "")

    def check_shape(self) -> None:
        if self.operation is None:
            raise ValidationError(
                [Problem("record", f"needs one of {', '.join(self.operations)}")], self.kind
            )


@attrs.frozen(slots=True, weakref_slot=False, init=False)
class GroupUpdate(PeopleUpdate):
    """A group profile update for ``/groups``: ``$group_key`` and ``$group_id`` name the group."""

    kind: ClassVar[str] = "group"
    endpoint: ClassVar[Endpoint] = "groups"
    operations: ClassVar[tuple[str, ...]] = GROUP_OPERATIONS

    @property
    def group_key(self) -> Any:
        return self.record.get("$group_key")

    @property
    def group_id(self) -> Any:
        return self.record.get("$group_id")

    @property
    def key(self) -> str:
        return f"{self.group_key}:{self.group_id}"


# The slots' setters, which ignore the frozen __setattr__ (for __init__ and the JSON cache).
_set_record = Message.__dict__["record"].__set__
_set_auth = Message.__dict__["auth"].__set__
_set_json = Message.__dict__["_json"].__set__


NESTED_TOO_DEEPLY_TO_READ = "is nested too deeply to read (several hundred levels)"


def message_from_json(endpoint: str, data: bytes) -> Message:
    """Decode a record's JSON (as a transport wrote it) back into its message.

    The bytes are kept as the message's ``json()``, so a transport that sends the message on
    does not encode it again. Raises ``ValidationError`` when the JSON or the record is bad.
    """
    try:
        record = loads(data)
    except ValueError as exc:
        raise ValidationError([Problem("record", f"is not JSON: {exc}")]) from exc
    try:
        frozen = freeze_parsed(record)
    except RecursionError:
        # orjson reads 1,024 levels, and freezing several hundred outruns the interpreter's
        # stack: uncaught, it stopped the forwarder at such a record on every start. (Not
        # ``loads_record``'s limit: a sender rebuilds the messages it did not keep from their
        # JSON with this, and must rebuild every record it could send.)
        raise ValidationError([Problem("record", NESTED_TOO_DEEPLY_TO_READ)]) from None
    message = _message_class(endpoint, record)(frozen)
    message.check_shape()
    # Freezing parsed JSON changes only lists into tuples, which encode the same: the bytes
    # given are exactly what json() would produce.
    _set_json(message, bytes(data))
    return message


def message_from_record(endpoint: str, record: object) -> Message:
    """Decode a wire record sent to ``endpoint`` back into its message.

    Raises ``ValidationError`` when the endpoint is unknown or the record is malformed.
    """
    return _message_class(endpoint, record).from_record(record)  # type: ignore[arg-type]


def _message_class(endpoint: str, record: object) -> type[Message]:
    """The class of the message ``record`` (sent to ``endpoint``) came from."""
    if endpoint not in ENDPOINTS:
        raise ValidationError([Problem("endpoint", f"{endpoint!r} is not one of {ENDPOINTS}")])
    # ``dict`` first: the ABC check alone costs more than the rest of this function.
    if not isinstance(record, dict) and not isinstance(record, Mapping):
        raise ValidationError([Problem("record", "must be a JSON object")])
    if endpoint == "engage":
        return PeopleUpdate
    if endpoint == "groups":
        return GroupUpdate
    if endpoint == "track":
        return Alias if record.get("event") == "$create_alias" else Event
    return Merge if record.get("event") == "$merge" else ImportEvent
