"""``Mixpanel``: the familiar client; each call becomes a message sent through the pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

from mixpanel_core.config import Config, TransportConfig, load_config
from mixpanel_core.errors import NotJSONError, Problem, ValidationError
from mixpanel_core.frozen import Fallback, FrozenDict, freeze, is_flat
from mixpanel_core.insert_id import InsertIdGenerator
from mixpanel_core.messages import (
    Alias,
    Event,
    GroupUpdate,
    ImportAuth,
    ImportEvent,
    Merge,
    Message,
    PeopleUpdate,
)
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.secrets import Secret
from mixpanel_core.serializers import as_fallback
from mixpanel_core.transport import Transport
from mixpanel_core.version import __version__

LIB_NAME = "python"
"""``mp_lib`` as the official SDK sets it, so Mixpanel's library reports keep grouping."""

Props = Mapping[str, Any] | None


class Mixpanel:
    """Send events and profile updates to Mixpanel through the configured pipeline.

    ``Mixpanel(token)`` sends straight to Mixpanel over HTTP. ``Mixpanel(token, transport)``
    sends through ``transport``: any transport, or an official-style consumer such as
    ``BufferedConsumer()``. ``Mixpanel.from_config(path)`` builds plugins, transports and
    routes from a TOML file. The methods match the official client's names, argument order and
    defaults, and the wire records match its payloads.
    """

    def __init__(
        self,
        token: str,
        transport: object | None = None,
        *,
        config: Config | None = None,
        pipeline: Pipeline | None = None,
        serializer: Fallback | type[json.JSONEncoder] | None = None,
    ) -> None:
        self._token = token
        self._fallback = as_fallback(serializer)
        self._insert_ids = InsertIdGenerator()
        if pipeline is None:
            config = config or Config()
            transports: Mapping[str, object]
            if transport is not None:
                transports = {"default": transport}
            elif config.transports:
                transports = config.transports
            else:
                transports = {"default": TransportConfig("http")}
            pipeline = Pipeline.from_config(config, transports)
            pipeline.check_routing()  # at once, rather than at every message
        self.pipeline = pipeline
        self._submit = pipeline.submit

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
    ) -> Mixpanel:
        """Build a client from a TOML file (``path``, ``$MIXPANEL_CORE_CONFIG`` or ./mixpanel.toml).

        The token is ``[mixpanel] token``.
        """
        config = load_config(path, environ)
        if not config.mixpanel.token:
            from mixpanel_core.errors import ConfigError

            raise ConfigError(f"mixpanel.token: required to build a client ({config.source})")
        return cls(config.mixpanel.token, config=config)

    # The official client's two seams: tests monkeypatch them on the instance.
    def _now(self) -> float:
        # ``time.time`` looked up at each call, as the official client does: a test that
        # patches it (``mock.patch("time.time")``, freezegun) must see its clock in payloads.
        return time.time()

    def _make_insert_id(self) -> str:
        return self._insert_ids.next_id()

    def plugin(self, name: str) -> Any:
        """The registered plugin object called ``name`` (e.g. to register super properties)."""
        return self.pipeline.plugin_manager.get_plugin(name)

    def _emit(
        self,
        cls: type[Message],
        record: dict[str, Any],
        auth: ImportAuth | None = None,
        *,
        properties: Props = None,
        message: Props = None,
        meta: Props = None,
    ) -> None:
        """Complete ``record`` with the call's arguments, freeze it and submit it.

        ``properties`` go into ``record["properties"]``, then ``message`` and ``meta`` on top
        of the record, in the official SDK's order. Arguments that are not mappings are
        refused here, with the values JSON cannot carry, so that ``on_invalid = "drop"``
        drops them too instead of raising in the caller.
        """
        try:
            if properties:
                _update(record["properties"], properties, "properties")
            if message:
                _update(record, message, "message")
            if meta:
                _update(record, meta, "meta")
            for key, value in list(record.items()):
                if not isinstance(value, dict) and isinstance(value, Mapping):
                    # An argument placed whole (people_set's properties, under $set) may be
                    # any mapping, as its type says; inside it, json's rule (see freeze).
                    record[key] = dict(value)
            frozen: FrozenDict = freeze(record, "", self._fallback)
        except ValidationError as exc:
            self.pipeline.reject(_of_kind(exc, cls.kind), None)
            return
        self.pipeline.submit(cls(frozen, auth))

    def _event_properties(self, distinct_id: Any, time_value: Any) -> dict[str, Any]:
        return {
            "token": self._token,
            "distinct_id": distinct_id,
            "time": time_value,
            "$insert_id": self._make_insert_id(),
            "mp_lib": LIB_NAME,
            "$lib_version": __version__,
        }

    # -- events ---------------------------------------------------------------------------

    def track(
        self, distinct_id: Any, event_name: str, properties: Props = None, meta: Props = None
    ) -> None:
        """Record an event (``/track``)."""
        # The hot path: written out rather than shared with import_data to save calls.
        props = {
            "token": self._token,
            "distinct_id": distinct_id,
            "time": self._now(),
            "$insert_id": self._make_insert_id(),
            "mp_lib": LIB_NAME,
            "$lib_version": __version__,
        }
        if (
            not meta
            and type(event_name) is str
            and (type(distinct_id) is str or type(distinct_id) is int)
            and (not properties or (type(properties) is dict and is_flat(properties)))
        ):
            # Plain scalars only: frozen by one copy (dict.update fills it before anyone
            # can see it), with no walk over the values.
            frozen = FrozenDict(props)
            if properties:
                dict.update(frozen, properties)
            self._submit(Event(FrozenDict(event=event_name, properties=frozen)))
            return
        record = {"event": event_name, "properties": props}
        self._emit(Event, record, properties=properties, meta=meta)

    def import_data(
        self,
        api_key: str | None,
        distinct_id: Any,
        event_name: str,
        timestamp: float,
        properties: Props = None,
        meta: Props = None,
        api_secret: str | None = None,
    ) -> None:
        """Record an event of any age (``/import``); ``api_key``/``api_secret`` are legacy auth."""
        record = {"event": event_name, "properties": self._event_properties(distinct_id, timestamp)}
        auth = _legacy_auth(api_key, api_secret)
        self._emit(ImportEvent, record, auth, properties=properties, meta=meta)

    def alias(self, alias_id: str, original: str, meta: Props = None) -> None:
        """Map ``alias_id`` onto ``original`` (``$create_alias``, sent like any message)."""
        props = {"distinct_id": original, "alias": alias_id, "token": self._token}
        self._emit(Alias, {"event": "$create_alias", "properties": props}, meta=meta)

    def merge(
        self,
        api_key: str | None,
        distinct_id1: str,
        distinct_id2: str,
        meta: Props = None,
        api_secret: str | None = None,
    ) -> None:
        """Merge two distinct ids (``$merge`` through ``/import``)."""
        props = {"$distinct_ids": [distinct_id1, distinct_id2], "token": self._token}
        record = {"event": "$merge", "properties": props}
        self._emit(Merge, record, _legacy_auth(api_key, api_secret), meta=meta)

    # -- people ---------------------------------------------------------------------------
    # Each passes on ``meta`` as the official SDK does (``meta or {}``, as given for an unset,
    # ``meta or None`` for a delete): a subclass overriding ``people_update`` or
    # ``group_update`` (and reading ``meta``) sees what it saw there.

    def people_set(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Set properties on a user profile, creating it if needed."""
        self.people_update({"$distinct_id": distinct_id, "$set": properties}, meta=meta or {})

    def people_set_once(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Set properties that are not set yet."""
        self.people_update({"$distinct_id": distinct_id, "$set_once": properties}, meta=meta or {})

    def people_increment(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Add to numeric properties (negative values subtract)."""
        self.people_update({"$distinct_id": distinct_id, "$add": properties}, meta=meta or {})

    def people_append(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Append values to list properties."""
        self.people_update({"$distinct_id": distinct_id, "$append": properties}, meta=meta or {})

    def people_union(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Merge values into list properties, ignoring duplicates."""
        self.people_update({"$distinct_id": distinct_id, "$union": properties}, meta=meta or {})

    def people_unset(self, distinct_id: Any, properties: Sequence[str], meta: Props = None) -> None:
        """Remove properties from a profile."""
        self.people_update({"$distinct_id": distinct_id, "$unset": properties}, meta=meta)

    def people_remove(self, distinct_id: Any, properties: Props, meta: Props = None) -> None:
        """Remove values from list properties."""
        self.people_update({"$distinct_id": distinct_id, "$remove": properties}, meta=meta or {})

    def people_delete(self, distinct_id: Any, meta: Props = None) -> None:
        """Delete a profile."""
        self.people_update({"$distinct_id": distinct_id, "$delete": ""}, meta=meta or None)

    def people_track_charge(
        self, distinct_id: Any, amount: float, properties: Props = None, meta: Props = None
    ) -> None:
        """Append a charge of ``amount`` to ``$transactions``."""
        transaction: dict[str, Any] = {}
        try:
            if properties:
                _update(transaction, properties, "properties")
        except NotJSONError as exc:
            self.pipeline.reject(_of_kind(exc, PeopleUpdate.kind), None)
            return
        transaction["$amount"] = amount
        self.people_append(distinct_id, {"$transactions": transaction}, meta=meta or {})

    def people_clear_charges(self, distinct_id: Any, meta: Props = None) -> None:
        """Remove every charge from a profile."""
        self.people_unset(distinct_id, ["$transactions"], meta=meta or {})

    def people_update(self, message: Mapping[str, Any], meta: Props = None) -> None:
        """Send a profile update built by the caller (``$distinct_id`` plus one operation)."""
        # ``message`` may be pairs, as ``dict.update`` (the official SDK's) takes them.
        record = {"$token": self._token, "$time": self._now()}
        self._emit(PeopleUpdate, record, message=message, meta=meta)

    # -- groups ---------------------------------------------------------------------------

    def group_set(
        self, group_key: str, group_id: Any, properties: Props, meta: Props = None
    ) -> None:
        """Set properties on a group profile, creating it if needed."""
        self._group(group_key, group_id, "$set", properties, meta or {})

    def group_set_once(
        self, group_key: str, group_id: Any, properties: Props, meta: Props = None
    ) -> None:
        """Set group properties that are not set yet."""
        self._group(group_key, group_id, "$set_once", properties, meta or {})

    def group_union(
        self, group_key: str, group_id: Any, properties: Props, meta: Props = None
    ) -> None:
        """Merge values into a group's list properties."""
        self._group(group_key, group_id, "$union", properties, meta or {})

    def group_unset(
        self, group_key: str, group_id: Any, properties: Sequence[str], meta: Props = None
    ) -> None:
        """Remove properties from a group profile."""
        self._group(group_key, group_id, "$unset", properties, meta)

    def group_remove(
        self, group_key: str, group_id: Any, properties: Props, meta: Props = None
    ) -> None:
        """Remove values from a group's list properties."""
        self._group(group_key, group_id, "$remove", properties, meta or {})

    def group_delete(self, group_key: str, group_id: Any, meta: Props = None) -> None:
        """Delete a group profile."""
        self._group(group_key, group_id, "$delete", "", meta or None)

    def _group(self, key: str, group_id: Any, operation: str, value: Any, meta: Props) -> None:
        self.group_update({"$group_key": key, "$group_id": group_id, operation: value}, meta=meta)

    def group_update(self, message: Mapping[str, Any], meta: Props = None) -> None:
        """Send a group update built by the caller (``$group_key``, ``$group_id``, one op)."""
        # ``message`` may be pairs, as ``dict.update`` (the official SDK's) takes them.
        record = {"$token": self._token, "$time": self._now()}
        self._emit(GroupUpdate, record, message=message, meta=meta)

    # -- lifecycle ------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> list[Message]:
        """Deliver what the transports hold, within ``timeout``; returns the messages they still
        hold, with no outcome yet (they go on delivering them). ``timeout`` bounds the call,
        not each transport: each gets what is left of it, at least 1 s, and a transport fed
        by another (a fallback) its own after that one's (see docs/transports/index.md).

        Messages rejected or failed by then are not returned: they are reported to the
        ``mixpanel_delivered`` hooks, and dead-lettered and logged by the transports that do
        (``buffered_http``). One exception: ``multiprocessing_queue`` also returns the messages
        it could not queue by the deadline, which it reported FAILED. See
        docs/transports/index.md.
        """
        return self.pipeline.flush(timeout)

    def close(self, timeout: float | None = None) -> list[Message]:
        """Flush and release the transports, within ``timeout`` (as ``flush``); returns the
        messages they gave up on, each also reported FAILED. Messages that failed before are
        not returned (see ``flush``)."""
        return self.pipeline.close(timeout)

    def __enter__(self) -> Mixpanel:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Mixpanel:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # close() may wait for deliveries: in a thread, so the event loop goes on meanwhile.
        await asyncio.to_thread(self.close)


def _of_kind(error: ValidationError, kind: str) -> ValidationError:
    """``error`` again, saying which kind of message it refused, with the same cause."""
    named = type(error)(error.problems, kind)
    named.__cause__ = error.__cause__
    return named


def _update(record: dict[str, Any], extra: Any, argument: str) -> None:
    """``record.update(extra)``: a mapping, or pairs as the official SDK takes them too."""
    try:
        record.update(extra)
    except (TypeError, ValueError) as exc:
        rule = f"must be a mapping of names to values, not {type(extra).__name__}"
        raise NotJSONError([Problem(argument, rule)]) from exc


def _legacy_auth(api_key: str | None, api_secret: str | None) -> ImportAuth | None:
    if api_key is None and api_secret is None:
        return None
    return ImportAuth(api_key, Secret(api_secret) if api_secret is not None else None)


__all__ = ["Mixpanel", "Transport"]
