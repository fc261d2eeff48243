"""The exceptions mixpanel-core raises, all under one root.

::

    MixpanelCoreError                 anything this library raises on purpose
    ├── ConfigError                   a TOML file, key or value is wrong; names the key path
    ├── ValidationError               a message broke a rule; carries every Problem found
    │   └── NotJSONError              a value JSON cannot carry (also a TypeError, as json's)
    ├── PluginError                   a plugin raised; names the plugin and the hook
    ├── TransportError                a transport cannot be built or cannot accept a message
    │   ├── PartialSendError          some of a message's transports refused it; names who took it
    │   └── QueueFullError            a bounded queue was full and the policy said to fail
    ├── DeliveryError                 Mixpanel did not accept what was sent; carries the reports
    │   ├── AuthenticationError       401/403, a proxy's 407: no retry helps; names who refused
    │   └── compat.MixpanelException  the official package's name, for drop-in users
    ├── forwarder.ForwarderError      the forwarder had to stop (poison under on_poison = "stop")
    ├── commands.CommandError         a command cannot go on (send, replay-dead-letters)
    │   └── commands.InputError       an input file is unreadable or malformed
    ├── kafka.BrokerError             the embedded Kafka-compatible broker would not start
    └── emulator.EmulatorError        the Mixpanel emulator would not start or was misused

The last five live beside what raises them; the command line prints any of these as one line
and exits 1.

Foreign exceptions (requests, kafka-python, tomllib) are translated at the boundary with
``raise OurError(...) from exc`` so callers need to catch only these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from mixpanel_core.delivery import DeliveryReport


class MixpanelCoreError(Exception):
    """The root of every error this library raises on purpose.

    Pickled as it is (its text and attributes), not rebuilt by calling its class with its
    text, which is what ``Exception`` does and what these constructors do not take: an
    error crossing a process (``multiprocessing``, Celery) came back with its text spelt
    out letter by letter, or could not be unpickled at all (which stopped a ``Pool``). The
    messages of its reports go without the API secret they came with (``import_data(...,
    api_secret=...)``): pickled, a ``Secret`` is its value, and an error holds no secret.
    """

    def __reduce__(self) -> tuple[object, ...]:
        return (_unpickled, (type(self), self.args), _without_call_secrets(self.__dict__))


def _without_call_secrets(state: dict[str, object]) -> dict[str, object]:
    """``state`` with each report's message (in ``DeliveryError.reports``) without the API
    secret given with its call (``Message.without_call_secret``)."""
    reports = state.get("reports")
    if not isinstance(reports, tuple):
        return state
    return {**state, "reports": tuple(r.without_call_secret() for r in reports)}


def _unpickled(cls: type[MixpanelCoreError], args: tuple[object, ...]) -> MixpanelCoreError:
    """An error of ``cls`` with ``args``, its constructor not called (its attributes follow,
    set by pickle from the state ``__reduce__`` gave)."""
    return cls.__new__(cls, *args)


class ConfigError(MixpanelCoreError):
    """The configuration is wrong; the message names the key path and the rule."""


@attrs.frozen
class Problem:
    """One broken rule: ``field`` is a dotted path into the wire record."""

    field: str
    rule: str
    cause: BaseException | None = attrs.field(default=None, eq=False, repr=False)
    """What a user's code raised that made the rule break (a serializer's own refusal): kept
    out of the text, which is logged and reported, as it may quote the value."""

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


class ValidationError(MixpanelCoreError):
    """A message broke one or more rules; nothing of it was sent."""

    def __init__(self, problems: Sequence[Problem], kind: str = "message") -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        listing = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid {kind}: {listing}")


class NotJSONError(ValidationError, TypeError, ValueError):
    """A value or key JSON cannot carry (and no serializer converts it); nothing was sent.

    Also a ``TypeError`` and a ``ValueError``, which is what ``json`` raises for the official
    SDK (the first for a value of a type it cannot write, the second for a value that holds
    itself, or a serializer's own refusal): code written against it (``except TypeError``,
    ``except ValueError``) keeps catching it.
    """


class PluginError(MixpanelCoreError):
    """A plugin raised while running a hook.

    ``said``: what to say of ``cause`` (by default its type and text); the pipeline gives it
    redacted, as what a plugin raised may quote a credential (see docs/errors.md).
    """

    def __init__(
        self, plugin: str, hook: str, cause: BaseException, said: str | None = None
    ) -> None:
        self.plugin = plugin
        self.hook = hook
        said = f"{type(cause).__name__}: {cause}" if said is None else said
        super().__init__(f"plugin {plugin!r} failed in {hook}: {said}")


class BuildFailedError(ConfigError):
    """A plugin's or transport's ``from_config`` (or constructor) raised something not
    mixpanel-core's own: a ``ConfigError`` naming its table, as a configuration error is, but
    not necessarily one (a client library's "no brokers available" when its server is down):
    a transport whose build failed so is tried again later, as after a ``TransportError``."""


class TransportError(MixpanelCoreError):
    """A transport could not be built, or could not take a message."""


class NotYetDeliveredError(TransportError):
    """A ``flush`` ran out of time while another process still delivers records (the
    ``multiprocessing_queue`` sender): they cannot be returned, only counted (``count``).
    They are not lost: that process goes on delivering, and reporting, them."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


class PartialSendError(TransportError):
    """A message routed to several transports was refused by some of them.

    ``taken_by`` names the transports that took it (sending it again would duplicate it
    there); ``errors`` holds what each of the others raised. ``said``: what to say of each
    error (by default its type and text); the pipeline gives it redacted (see docs/errors.md).
    """

    def __init__(
        self,
        taken_by: Sequence[str],
        errors: Mapping[str, BaseException],
        said: Mapping[str, str] | None = None,
    ) -> None:
        self.taken_by: tuple[str, ...] = tuple(taken_by)
        self.errors: dict[str, BaseException] = dict(errors)
        told = said or {name: f"{type(e).__name__}: {e}" for name, e in errors.items()}
        refused = "; ".join(f"{name}: {told[name]}" for name in errors)
        taken = ", ".join(self.taken_by) or "none"
        super().__init__(f"taken by transports: {taken}; refused by {refused}")


class QueueFullError(TransportError):
    """A bounded queue stayed full for longer than the configured policy allows.

    ``waited``: whether the queue waited for room before refusing. ``False`` for a record that
    can never fit (larger than the whole byte bound) or a send from the queue's own consumer
    thread, refused at once: the queue may well take the next one.
    """

    def __init__(self, message: str, *, waited: bool = True) -> None:
        super().__init__(message)
        self.waited = waited


class DeliveryError(MixpanelCoreError):
    """Mixpanel did not accept some or all records; ``reports`` says which and why."""

    def __init__(self, message: str, reports: Sequence[DeliveryReport] = ()) -> None:
        self.reports: tuple[DeliveryReport, ...] = tuple(reports)
        super().__init__(message)


class AuthenticationError(DeliveryError):
    """Mixpanel refused the credentials (401/403), or a proxy its own (407); no retry helps."""
