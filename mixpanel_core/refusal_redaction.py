"""A message refused before enrichment, redacted for the DROPPED report that carries it.

Refused as the caller made it, the message never met the ``redaction`` enricher: its report
would hand the observers the personal data it was set to hash or drop.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from mixpanel_core.hook_calls import HookCall
from mixpanel_core.messages import Message

# The pipeline's name, under which its dropped messages have always been logged.
logger = logging.getLogger("mixpanel_core.pipeline")


def redacted(message: Message, redactors: Sequence[HookCall]) -> Message | None:
    """``message`` through the ``redaction`` enricher (``redactors``), ``None`` if that fails
    on it: the report then carries no message rather than one unredacted."""
    try:
        for _, redact in redactors:
            made = redact(message)
            if made is not None:
                message = made
    except Exception as exc:
        logger.warning(
            "the dropped message's report carries no message: redaction failed on it (%s: %s)",
            type(exc).__name__,
            exc,
        )
        return None
    return message
