"""The official consumers' arguments read as mixpanel-core's: endpoint names, timeouts, backoff.

Also what a ``send`` is given, its ``json_message`` (one record or a JSON array of them) and
import credentials, as the messages the ingestion client sends. What cannot be read is refused:
a bad timeout or backoff with ``TypeError``/``ValueError`` naming the argument, when the
consumer is built; a bad endpoint or record with ``MixpanelException``, when it is sent.
"""

from __future__ import annotations

import contextlib
import math
import operator
import os
from collections.abc import Iterator
from typing import Any

import attrs

from mixpanel_core import wire
from mixpanel_core.compat import MixpanelException
from mixpanel_core.errors import ConfigError, ValidationError
from mixpanel_core.ingestion.endpoints import INSECURE_HTTP_SWITCH
from mixpanel_core.messages import Endpoint, ImportAuth, Message, message_from_record
from mixpanel_core.schema import MAX_SECONDS
from mixpanel_core.secrets import Secret
from mixpanel_core.settings import CREDENTIAL_KEYS

OFFICIAL_TO_CORE: dict[str, Endpoint] = {
    "events": "track",
    "people": "engage",
    "groups": "groups",
    "imports": "import",
}


def core_endpoint(endpoint: str) -> Endpoint:
    """This library's endpoint for one of the official names (``events``, ``people``...)."""
    if endpoint not in OFFICIAL_TO_CORE:
        # The official text, word for word (its ``dict_keys([...])`` too): code matches on it.
        raise MixpanelException(
            f'No such endpoint "{endpoint}". Valid endpoints are one of {OFFICIAL_TO_CORE.keys()}'
        )
    return OFFICIAL_TO_CORE[endpoint]


_URL_ARGUMENTS = {
    "track": "events_url",
    "engage": "people_url",
    "import": "import_url",
    "groups": "groups_url",
}
# The settings' keys, bare (attrs' validators) and in the file's form (the URL checks).
_ARGUMENT_OF_KEY = {
    "api_host": "api_host",
    "mixpanel.api_host": "api_host",
    **{f"urls.{core}": argument for core, argument in _URL_ARGUMENTS.items()},
    **{f"mixpanel.urls.{core}": argument for core, argument in _URL_ARGUMENTS.items()},
}
_IN_ARGUMENTS_WORDS = (
    (
        INSECURE_HTTP_SWITCH,
        "use the native client with mixpanel.allow_insecure_http = true if this network is "
        "trusted (these consumers have no such switch)",
    ),
    ("mixpanel.urls.NAME", "events_url, people_url, import_url or groups_url"),
    (CREDENTIAL_KEYS, "give credentials= (a ServiceAccountCredentials) or an api_secret"),
)


@contextlib.contextmanager
def named_as_arguments() -> Iterator[None]:
    """Re-raise a refusal of a setting the consumer made of its arguments (``api_host``, the
    endpoint URLs) naming the argument, as given to the official constructor."""
    try:
        yield
    except (ConfigError, TypeError, ValueError) as error:
        key, colon, rule = str(error).partition(": ")
        if not colon or key not in _ARGUMENT_OF_KEY:
            raise
        for native, official in _IN_ARGUMENTS_WORDS:
            rule = rule.replace(native, official)
        raise type(error)(f"{_ARGUMENT_OF_KEY[key]}: {rule}") from None


def connect_and_read_timeouts(request_timeout: object) -> tuple[float, float]:
    """``(connect, read)`` from a number of seconds for both, or a ``(connect, read)`` pair,
    as the official consumer's ``requests`` reads it."""
    if isinstance(request_timeout, tuple | list):
        if len(request_timeout) != 2:
            raise ValueError(
                "request_timeout: a pair must be (connect, read) seconds, "
                f"not {len(request_timeout)} values"
            )
        connect, read = request_timeout
        return _seconds(connect, "request_timeout[0]"), _seconds(read, "request_timeout[1]")
    seconds = _seconds(request_timeout, "request_timeout")
    return seconds, seconds


def _seconds(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            f"{name}: must be a number of seconds, a (connect, read) pair of them, or None for "
            f"the default timeouts, not {type(value).__name__}"
        )
    if not (0 < value <= MAX_SECONDS):  # NaN fails it too
        raise ValueError(
            f"{name}: must be a number of seconds greater than 0 and at most {MAX_SECONDS} (a "
            f"day), or None for the default timeouts, not {value!r}"
        )
    return float(value)


def checked_backoff_factor(value: object) -> float:
    """``retry_backoff_factor`` as a float, or the official argument's error if it is not a
    number of seconds this client can wait (a doubled factor is the first wait)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"retry_backoff_factor: must be a number, not {type(value).__name__}")
    if not value <= MAX_SECONDS / 2:  # NaN fails it too; doubled into the first wait
        raise ValueError(
            f"retry_backoff_factor: must be a number of seconds of at most {MAX_SECONDS // 2}, "
            f"not {value!r}"
        )
    return float(value)


def tls_settings(verify_cert: object) -> dict[str, Any]:
    """``verify_cert`` as ``MixpanelSettings`` keys, read as the official consumer's requests
    reads its ``verify``: the path of the CA certificates to trust (a PEM file or a directory
    of hashed ones), ``None`` to verify, anything else verifies if true."""
    if isinstance(verify_cert, str | bytes | os.PathLike):
        path = os.fsdecode(verify_cert)
        if not path:
            raise ValueError(
                "verify_cert: '' is not a path of CA certificates; give a path, True or False"
            )
        if not os.path.exists(path):
            raise ValueError(
                f"verify_cert: {path!r} does not exist; give a file of CA certificates (PEM), "
                "a directory of hashed ones, True to trust certifi's or False not to verify"
            )
        return {"verify_tls": True, "ca_bundle": path}
    return {"verify_tls": verify_cert is None or bool(verify_cert)}


def checked_retry_limit(value: object) -> int | None:
    """``retry_limit`` as ``HttpOptions.max_retries``: a count, or ``None`` for no count limit
    (as urllib3's ``Retry(total=None)`` reads it), within the retry budget either way."""
    if value is None:
        return None
    if not isinstance(value, int | float):
        raise TypeError(
            f"retry_limit: must be a number of retries or None, not {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"retry_limit: must be a finite number of retries or None, not {value}")
    # As urllib3's Retry(total=) counts them: one retry per whole unit (2.5 allows two); a
    # bool is the int it is.
    return max(math.floor(value), 0)


def checked_max_size(value: object) -> int:
    """``max_size`` as the batch size: a whole number (the official class fails at its first
    full batch with anything else, slicing its buffer with it; what slices as an int, a numpy
    integer say, is one), at least 1."""
    try:
        size = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"max_size: must be a whole number of records, not {value!r}") from None
    return max(1, size)


def official_messages(
    endpoint: Endpoint,
    json_message: str,
    api_key: str | tuple[str | None, str | None] | None,
    api_secret: str | None,
) -> list[Message]:
    """The messages for ``endpoint`` of what a ``send`` was given; raises MixpanelException."""
    # The official BufferedConsumer hands its Consumer (api_key, api_secret) as one tuple.
    if isinstance(api_key, tuple):
        api_key, api_secret = api_key
    try:
        parsed: Any = wire.loads(json_message)
    except ValueError as exc:
        raise MixpanelException(f"json_message is not JSON: {exc}") from exc
    records = parsed if isinstance(parsed, list) else [parsed]
    auth = None
    if api_key is not None or api_secret is not None:
        auth = ImportAuth(api_key, Secret(api_secret) if api_secret is not None else None)
    messages = []
    for index, record in enumerate(records):
        try:
            messages.append(message_from_record(endpoint, record))
        except ValidationError as exc:
            # None of the text is sent: the caller cannot tell which part went.
            which = f"record {index} of {len(records)} (counted from 0): "
            raise MixpanelException(
                f"cannot send to /{endpoint}, nothing of the text was sent: "
                f"{which if len(records) > 1 else ''}{exc}"
            ) from exc
    if auth is not None:
        messages = [attrs.evolve(m, auth=auth) for m in messages]
    return messages
