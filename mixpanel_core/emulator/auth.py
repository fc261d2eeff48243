"""/import authentication: service account + project_id, project API secret, or project token.

Failure messages say which kind of credential was tried, never the secret that was sent.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from mixpanel_core.emulator.config import EmulatorConfig


@dataclass(frozen=True, slots=True)
class AuthFailure:
    """Why a request was refused: 401 (bad or missing credentials) or 403 (wrong project)."""

    status: int
    message: str


def _same(given: str, expected: str | None) -> bool:
    # An unset or empty credential matches nothing. Constant-time so the emulator does not
    # model a timing leak that real code might copy.
    if not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def _basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, _, password = decoded.partition(":")
    return username, password


def check_import_auth(
    authorization: str | None, project_id: str | None, config: EmulatorConfig
) -> AuthFailure | None:
    """None if the request may import; otherwise the refusal to answer with."""
    credentials = _basic_credentials(authorization)
    if credentials is None:
        return AuthFailure(
            401,
            "Invalid credentials: /import needs HTTP Basic auth with a service account and"
            " ?project_id=, the project API secret, or the project token as the username",
        )
    username, password = credentials
    account = config.service_account
    if account is not None and password and _same(username, account[0]):
        if not _same(password, account[1]):
            return AuthFailure(
                401, f"Invalid credentials: wrong secret for service account '{account[0]}'"
            )
        if not project_id:  # ?project_id= with no value says none (review R66 F5)
            return AuthFailure(
                401,
                f"Invalid credentials: service account '{account[0]}' needs the project_id"
                " query parameter",
            )
        if project_id != config.project_id:
            return AuthFailure(
                403,
                f"service account '{account[0]}' has no access to project_id {project_id!r}",
            )
        return None
    if not password:
        if _same(username, config.api_secret):
            return None
        if any(_same(username, token) for token in config.tokens):
            return None
        return AuthFailure(
            401,
            "Invalid credentials: the Basic username (with an empty password) is neither the"
            " project API secret nor a project token",
        )
    return AuthFailure(
        401, "Invalid credentials: unknown service account (username and secret do not match)"
    )
