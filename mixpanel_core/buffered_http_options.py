"""``BufferedHttpOptions``: a ``buffered_http`` transport's table, read by the transport and by
the forwarder (``forwarder.transport`` may name such a transport for its HTTP options)."""

from __future__ import annotations

from typing import TypeVar

import attrs

from mixpanel_core.buffer_options import BufferOptions
from mixpanel_core.ingestion import HttpOptions

OptionsT = TypeVar("OptionsT", HttpOptions, BufferOptions)


@attrs.frozen(slots=False)
class BufferedHttpOptions(HttpOptions, BufferOptions):
    """Every ``HttpOptions`` key (requests, retries) and every ``BufferOptions`` key (queue)."""

    def __attrs_post_init__(self) -> None:
        # Each base checks its own keys; inheritance alone would run only the first check.
        HttpOptions.__attrs_post_init__(self)
        BufferOptions.__attrs_post_init__(self)

    def http(self) -> HttpOptions:
        return _project(HttpOptions, self)

    def buffer(self) -> BufferOptions:
        return _project(BufferOptions, self)


def _project(cls: type[OptionsT], options: BufferedHttpOptions) -> OptionsT:
    return cls(**{f.name: getattr(options, f.name) for f in attrs.fields(cls)})
