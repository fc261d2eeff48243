"""Credentials for ``/import``: which kind applies to a message, and its Basic header.

Mixpanel takes, in the order we prefer them: a service account (user name and secret, plus
``?project_id=``), the legacy project API secret (as the Basic user name, empty password;
per call through ``ImportAuth`` or in ``[mixpanel]``), or the project token the same way.
``/track``, ``/engage`` and ``/groups`` need none: the token travels inside each record.
"""

from __future__ import annotations

import base64

import attrs

from mixpanel_core.messages import Message
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import MixpanelSettings

SERVICE_ACCOUNT = "service account"
API_SECRET = "api secret"
EMPTY_API_SECRET = "empty api secret"
PROJECT_TOKEN = "project token"


@attrs.frozen
class ImportCredentials:
    """One way of authenticating ``/import``; ``kind`` is safe to show, ``header`` is not."""

    kind: str
    header: Secret
    """The whole ``Authorization`` header value."""
    project_id: str | None = None
    username: str | None = None
    """The service account's user name (not a secret); ``None`` for the other kinds."""
    call_secret: Secret | None = None
    """The API secret given with the call these credentials are of, if they are one's: an
    answer to its request may quote it (a proxy's page echoing the request's headers)."""

    def describe(self) -> str:
        """Names the credential without revealing it, for error messages."""
        if self.username is not None:
            return f"{self.kind} {self.username!r} (project_id {self.project_id})"
        return self.kind


def basic(username: str, password: str) -> Secret:
    """An HTTP Basic ``Authorization`` value."""
    raw = f"{username}:{password}".encode()
    return Secret("Basic " + base64.b64encode(raw).decode("ascii"))


def configured_credentials(settings: MixpanelSettings) -> ImportCredentials | None:
    """The credentials ``[mixpanel]`` configures, best first; ``None`` if there are none."""
    # Only a missing key means none: ``MixpanelSettings`` refuses an empty one, which would
    # otherwise hand /import to the next kind without a word.
    username, secret = settings.service_account_username, settings.service_account_secret
    if username is not None and secret is not None:
        return ImportCredentials(
            SERVICE_ACCOUNT, basic(username, secret.reveal()), settings.project_id, username
        )
    if settings.api_secret is not None:
        return ImportCredentials(API_SECRET, basic(settings.api_secret.reveal(), ""))
    if settings.token is not None:
        return ImportCredentials(PROJECT_TOKEN, basic(settings.token, ""))
    return None


def credentials_for(
    message: Message, configured: ImportCredentials | None
) -> ImportCredentials | None:
    """What authenticates ``message`` on ``/import``.

    A service account always wins (the official client does the same); otherwise an API secret
    given with the call (``import_data(..., api_secret=...)``) beats the configured one, and the
    token inside the record is the last resort.
    """
    if configured is not None and configured.kind == SERVICE_ACCOUNT:
        return configured
    auth = message.auth
    if auth is not None and auth.api_secret is not None:
        # Even an empty one (an unset environment variable, usually), as the official client
        # sends it: Mixpanel's 401 then names the mistake, where falling back to the token
        # would hide it.
        secret = auth.api_secret.reveal()
        kind = API_SECRET if secret else EMPTY_API_SECRET
        return ImportCredentials(kind, basic(secret, ""), call_secret=auth.api_secret)
    if configured is not None:
        return configured
    token = _record_token(message)
    return ImportCredentials(PROJECT_TOKEN, basic(token, "")) if token else None


def _record_token(message: Message) -> str | None:
    properties = message.record.get("properties")
    token = properties.get("token") if isinstance(properties, dict) else None
    return token if isinstance(token, str) else None
