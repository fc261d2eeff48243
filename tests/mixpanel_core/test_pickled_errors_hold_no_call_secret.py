"""A delivery error pickled to cross a process (``multiprocessing``, Celery) holds no API
secret given with a call: its reports' messages go without it (review R57 F2). The error is
the real one, of an ``import_data(..., api_secret=...)`` the emulator refused over a socket."""

from __future__ import annotations

import pickle
import time

import pytest

from mixpanel_core import Mixpanel
from mixpanel_core.compat import Consumer, MixpanelException
from mixpanel_core.compat import Mixpanel as CompatMixpanel
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import AuthenticationError, DeliveryError
from mixpanel_core.ingestion import HttpOptions
from mixpanel_core.messages import ImportEvent
from mixpanel_core.settings import MixpanelSettings
from transports.http import HttpTransport

pytestmark = pytest.mark.integration

SECRET = "wrong-secret-XYZ123"


def _refused(call: object) -> DeliveryError:
    with pytest.raises(DeliveryError) as caught:
        call.import_data(  # type: ignore[attr-defined]
            "api-key", "u1", "ev", int(time.time()) - 100, {"a": 1}, api_secret=SECRET
        )
    return caught.value


def _check(error: DeliveryError) -> None:
    assert error.reports[0].message is not None
    assert error.reports[0].message.call_secret is not None, "the raised error keeps it"
    data = pickle.dumps(error)
    assert SECRET.encode() not in data
    back = pickle.loads(data)
    assert type(back) is type(error)
    assert str(back) == str(error)
    [report] = back.reports
    assert isinstance(report.message, ImportEvent)
    assert report.message.record == error.reports[0].message.record
    assert report.message.call_secret is None
    assert report.message.auth is not None
    assert report.message.auth.api_key == "api-key"
    assert (report.status, report.http_status) == (error.reports[0].status, 401)


def test_the_http_transports_error_pickles_without_the_call_secret(
    mixpanel_emulator: Emulator,
) -> None:
    settings = MixpanelSettings(token="emulator-token", api_host=mixpanel_emulator.base_url)
    transport = HttpTransport(settings, HttpOptions(max_retries=0))
    error = _refused(Mixpanel("emulator-token", transport))
    assert isinstance(error, AuthenticationError)
    _check(error)


def test_the_drop_in_consumers_exception_pickles_without_the_call_secret(
    mixpanel_emulator: Emulator,
) -> None:
    consumer = Consumer(import_url=f"{mixpanel_emulator.base_url}/import", retry_limit=0)
    error = _refused(CompatMixpanel("emulator-token", consumer))
    assert isinstance(error, MixpanelException)
    _check(error)
