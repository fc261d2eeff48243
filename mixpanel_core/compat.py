"""A drop-in for ``import mixpanel``: the official names and signatures on mixpanel-core.

``from mixpanel_core.compat import Mixpanel`` where code had ``from mixpanel import Mixpanel``.
Payloads are the same; tests that monkeypatch ``_now`` and ``_make_insert_id`` on the instance
keep working. Consumers (``Consumer``, ``BufferedConsumer``, or your own with
``send(endpoint, json_message)``) are accepted as before.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from mixpanel_core.client import Mixpanel as _CoreMixpanel
from mixpanel_core.config import Config
from mixpanel_core.delivery import DeliveryReport
from mixpanel_core.errors import DeliveryError, MixpanelCoreError
from mixpanel_core.frozen import DATETIME_FORMAT, JSONValue, format_datetime
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

if TYPE_CHECKING:  # imported lazily below: they bring in the HTTP machinery
    from mixpanel_core.compat_consumers import BufferedConsumer, Consumer


class DatetimeSerializer(json.JSONEncoder):
    """The official encoder: datetimes as ``%Y-%m-%dT%H:%M:%S``; subclass it to extend."""

    def default(self, o: Any) -> Any:
        import datetime

        if isinstance(o, datetime.datetime):
            return o.strftime(DATETIME_FORMAT)
        return json.JSONEncoder.default(self, o)


class MixpanelException(DeliveryError):  # noqa: N818 (the official name)
    """Raised when messages cannot be sent; ``message`` and ``endpoint`` say which batch."""

    def __init__(self, message: object = "", reports: Sequence[DeliveryReport] = ()) -> None:
        super().__init__(str(message), reports)
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


def _fallback_for(serializer: type[json.JSONEncoder]) -> Any:
    """Turn an official-style ``serializer`` class into the converter messages are frozen with."""
    if serializer is DatetimeSerializer:
        return format_datetime
    encoder = serializer(separators=(",", ":"))

    def convert(value: object) -> JSONValue:
        return json.loads(encoder.encode(value))

    return convert


class Mixpanel(_CoreMixpanel):
    """The official constructor: ``Mixpanel(token, consumer, serializer, ..., credentials)``.

    Without a consumer, messages go over HTTP to api.mixpanel.com (with ``credentials`` for
    ``/import``). Feature flags are not part of mixpanel-core; passing a flags config fails
    loudly rather than doing nothing.
    """

    def __init__(
        self,
        token: str,
        consumer: object | None = None,
        serializer: type[json.JSONEncoder] = DatetimeSerializer,
        local_flags_config: object | None = None,
        remote_flags_config: object | None = None,
        credentials: ServiceAccountCredentials | None = None,
    ) -> None:
        if local_flags_config is not None or remote_flags_config is not None:
            raise MixpanelCoreError(
                "feature flags are not provided by mixpanel-core; keep the official package "
                "for flags and use mixpanel-core for tracking"
            )
        config = Config()
        if credentials is not None:
            config = Config(mixpanel=credentials.settings())
        self._credentials = credentials
        super().__init__(token, consumer, config=config, serializer=_fallback_for(serializer))


def __getattr__(name: str) -> Any:
    # compat_consumers imports this module, so it can only be imported once this one exists.
    if name in ("Consumer", "BufferedConsumer"):
        from mixpanel_core import compat_consumers

        return getattr(compat_consumers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BufferedConsumer",
    "Consumer",
    "DatetimeSerializer",
    "Mixpanel",
    "MixpanelException",
    "ServiceAccountCredentials",
]
