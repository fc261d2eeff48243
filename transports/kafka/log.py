"""The ``kafka`` transport's one logger, shared by every module of the package."""

import logging

logger = logging.getLogger(__name__.rpartition(".")[0])
"""Named ``transports.kafka`` whichever module logs: a logging configuration or filter naming the
transport's logger sees all of it, as when the transport was one module."""
