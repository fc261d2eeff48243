"""A drop-in for ``import mixpanel``: the official names and signatures on mixpanel-core.

``from mixpanel_core.compat import Mixpanel`` where code had ``from mixpanel import Mixpanel``.
Payloads are the same; tests that monkeypatch ``_now`` and ``_make_insert_id`` on the instance
keep working. Consumers (``Consumer``, ``BufferedConsumer``, or your own with
``send(endpoint, json_message)``) are accepted as before.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mixpanel_core.client import Mixpanel as _CoreMixpanel
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import DeliveryError, MixpanelCoreError
from mixpanel_core.secrets import Secret
from mixpanel_core.serializers import DatetimeSerializer, json_dumps
from mixpanel_core.settings import MixpanelSettings
from mixpanel_core.version import __version__ as _core_version

if TYPE_CHECKING:  # imported lazily below: they bring in the HTTP machinery
    from mixpanel_core.compat_consumers import BufferedConsumer, Consumer


class MixpanelException(DeliveryError):  # noqa: N818 (the official name)
    """Raised when messages cannot be sent; ``message`` and ``endpoint`` say which batch.

    Built like the official one (``args`` as given); ``reports`` says what became of each
    record.
    """

    def __init__(self, *args: object, reports: Sequence[DeliveryReport] = ()) -> None:
        super().__init__(str(args[0]) if args else "", reports)
        self.args = args
        self.message: str | None = None
        self.endpoint: str | None = None


class ServiceAccountCredentials:
    """Service-account credentials for ``/import`` (the official class's checks and repr)."""

    def __init__(self, username: str, secret: str, project_id: str) -> None:
        for field, value in (
            ("username", username),
            ("secret", secret),
            ("project_id", project_id),
        ):
            if not isinstance(value, str):
                raise TypeError(f"Service account {field} must be a string")
            if not value.strip():
                raise ValueError(f"Service account {field} cannot be empty")
        self.username = username.strip()
        self._secret = Secret(secret.strip())
        self.project_id = project_id.strip()

    @classmethod
    def adopt(cls, credentials: Any) -> ServiceAccountCredentials:
        """``credentials`` as this class: ours as they are, or the official package's own
        ``ServiceAccountCredentials`` (its ``username``, ``secret`` and ``project_id``), so a
        user who switched some imports and not others is not refused."""
        if isinstance(credentials, cls):
            return credentials
        try:
            fields = (credentials.username, credentials.secret, credentials.project_id)
        except AttributeError:
            raise TypeError(
                "credentials: must be a ServiceAccountCredentials (username, secret, "
                f"project_id), not {type(credentials).__name__}"
            ) from None
        return cls(*fields)

    @property
    def secret(self) -> str:
        return self._secret.reveal()

    def to_http_basic_auth(self) -> Any:
        from requests.auth import HTTPBasicAuth

        return HTTPBasicAuth(self.username, self._secret.reveal())

    def settings(self, base: MixpanelSettings | None = None) -> MixpanelSettings:
        """``[mixpanel]`` settings carrying these credentials."""
        import attrs

        return attrs.evolve(
            base or MixpanelSettings(),
            service_account_username=self.username,
            service_account_secret=self._secret,
            project_id=self.project_id,
        )

    def __repr__(self) -> str:
        return (
            f"ServiceAccountCredentials(username={self.username!r}, "
            f"project_id={self.project_id!r}, secret='***')"
        )


class Mixpanel(_CoreMixpanel):
    """The official constructor: ``Mixpanel(token, consumer, serializer, ..., credentials)``.

    Without a consumer, messages go to api.mixpanel.com through ``Consumer(credentials=...)``,
    as the official client's do, so failures raise ``MixpanelException``. ``_consumer`` and
    ``_serializer`` read as on the official client (``_consumer`` cannot be replaced).
    Feature flags are not part of mixpanel-core; passing a flags config fails loudly rather
    than doing nothing.
    """

    def __init__(
        self,
        token: str,
        consumer: object | None = None,
        serializer: type[json.JSONEncoder] | None = DatetimeSerializer,
        local_flags_config: object | None = None,
        remote_flags_config: object | None = None,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        if local_flags_config is not None or remote_flags_config is not None:
            raise MixpanelCoreError(
                "feature flags are not provided by mixpanel-core; keep the official package "
                "for flags and use mixpanel-core for tracking"
            )
        self._credentials = credentials
        if consumer is not None and credentials is not None:
            # The official client's warning, word for word: the consumer sends, and /import
            # then authenticates as that consumer does, not with these.
            logger.warning(
                "Credentials passed to Mixpanel() are ignored when a custom consumer is "
                "provided. Pass credentials to your consumer's constructor instead: "
                "Consumer(credentials=...)"
            )
        if consumer is None:
            # As the official client does: its default Consumer, so a failed send raises
            # MixpanelException (the core ``http`` transport's DeliveryError is no subclass of
            # it, and ``except MixpanelException`` around track() would no longer catch it).
            from mixpanel_core.compat_consumers import Consumer

            consumer = Consumer(credentials=credentials)
        # What the official client keeps under these names, which tests read: the consumer
        # records go through (the one given, or that default) and the serializer as given.
        self._consumer_given = consumer
        self._serializer = serializer
        # The official SDK hands ``None`` to json.dumps as ``cls``: the plain encoder.
        encoder = json.JSONEncoder if serializer is None else serializer
        super().__init__(token, consumer, serializer=encoder)

    @property
    def _consumer(self) -> object:
        return self._consumer_given

    @_consumer.setter
    def _consumer(self, consumer: object) -> None:
        # The official client sends through whatever this attribute holds; here the consumer
        # was wired into the pipeline when the client was built. Refused rather than ignored:
        # the records would otherwise go on to the old consumer (Mixpanel itself, by default).
        raise AttributeError(
            "_consumer: cannot be replaced on a mixpanel-core client, which would go on sending "
            "through the consumer it was built with; pass the consumer to Mixpanel(token, "
            "consumer) instead"
        )


def __getattr__(name: str) -> Any:
    # compat_consumers imports this module, so it can only be imported once this one exists.
    if name in ("Consumer", "BufferedConsumer"):
        from mixpanel_core import compat_consumers

        return getattr(compat_consumers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__version__ = _core_version
"""mixpanel-core's version (the official module's ``__version__`` is its own)."""

logger = logging.getLogger("mixpanel_core")
"""The library's logger, where the official module has ``logging.getLogger("mixpanel")``."""

__all__ = [
    "BufferedConsumer",
    "Consumer",
    "DatetimeSerializer",
    "Mixpanel",
    "MixpanelException",
    "ServiceAccountCredentials",
    "json_dumps",
]
