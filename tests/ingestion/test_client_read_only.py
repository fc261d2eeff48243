"""What an ingestion client was built with stays what it uses."""

from __future__ import annotations

import pytest

from mixpanel_core.ingestion import IngestionClient


def test_what_the_client_was_built_with_cannot_be_swapped(client: IngestionClient) -> None:
    """Its parts were built from them: ``options`` swapped for ``gzip = true`` compressed
    bodies that its poster then sent without ``Content-Encoding``."""
    for name in ("settings", "options", "name", "urls"):
        with pytest.raises(AttributeError):
            setattr(client, name, getattr(client, name))
