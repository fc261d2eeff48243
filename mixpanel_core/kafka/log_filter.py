"""Keeping SASL credentials and raw network frames out of kafka-python's DEBUG log.

At DEBUG, kafka-python logs every request and response it exchanges with a broker, and the raw
bytes of every frame. For SASL that includes ``SaslAuthenticateRequest(auth_bytes=...)``, which
for PLAIN is the username and the password in clear (SCRAM and OAUTHBEARER carry proofs and
tokens the same way). ``install()`` puts one filter on the two loggers that do this; it drops
exactly the records that can carry such bytes and lets every other record through.
"""

from __future__ import annotations

import functools
import logging

CHATTY_LOGGERS = ("kafka.protocol.parser", "kafka.net.connection")
"""kafka-python 3.x's loggers of requests, responses and raw frames."""

_BYTES = (bytes, bytearray, memoryview)


class CredentialLogFilter(logging.Filter):
    """Drops a record when one of its arguments is a SASL request or response, or raw bytes.

    The arguments are checked rather than the text, so nothing is formatted for a record that
    no handler would show, and a change in kafka-python's wording cannot let one through.
    """

    def __init__(self, sasl_types: tuple[type, ...]) -> None:
        super().__init__()
        self._dropped = (*_BYTES, *sasl_types)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if not isinstance(args, tuple):
            return True  # kafka-python always logs with positional arguments
        return not any(isinstance(arg, self._dropped) for arg in args)


@functools.cache
def install() -> CredentialLogFilter:
    """Put the filter on ``CHATTY_LOGGERS``, once per process; returns it (for tests)."""
    from kafka.protocol import sasl

    sasl_types = tuple(getattr(sasl, name) for name in sasl.__all__)
    credential_filter = CredentialLogFilter(sasl_types)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).addFilter(credential_filter)
    return credential_filter
