"""The official consumers' arguments change where and how records are sent, not only what
``_endpoints`` says: each checked by sending through the official client to the emulator.

Each test here killed a mutant that survived every other test: ``people_url`` or
``import_url`` read as unset, ``verify_cert`` ignored, ``retry_backoff_factor`` ignored,
``retry_limit=0`` read as "retries within the default budget" rather than none, and
``BufferedConsumer.flush()`` leaving an endpoint's buffer unsent.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import mixpanel
import pytest
import trustme

from mixpanel_core.compat import MixpanelException
from mixpanel_core.compat_consumers import BufferedConsumer, Consumer
from mixpanel_core.emulator import Emulator
from mixpanel_core.errors import ConfigError

pytestmark = pytest.mark.integration

TOKEN = "emulator-token"
NOWHERE = "127.0.0.1:9"
"""``api_host`` for the tests that name every URL themselves: the discard port, where nothing
answers, so a URL argument that is ignored makes its record fail rather than arrive."""


def _send_one_of_each(client: mixpanel.Mixpanel) -> None:
    client.track("user-1", "Signed up", {"$insert_id": "track-1"})
    client.people_set("user-1", {"plan": "pro"})
    client.group_set("company", "acme", {"size": 5})
    client.import_data(
        TOKEN, "user-1", "Old event", 1_700_000_000, {"$insert_id": "import-1"}, api_secret=None
    )


def _urls(base_url: str) -> dict[str, str]:
    return {
        "events_url": f"{base_url}/track",
        "people_url": f"{base_url}/engage",
        "groups_url": f"{base_url}/groups",
        "import_url": f"{base_url}/import",
    }


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_each_url_argument_is_where_its_records_go(
    mixpanel_emulator: Emulator, consumer_class: Any
) -> None:
    consumer = consumer_class(api_host=NOWHERE, retry_limit=0, **_urls(mixpanel_emulator.base_url))
    _send_one_of_each(mixpanel.Mixpanel(TOKEN, consumer=consumer))
    if isinstance(consumer, BufferedConsumer):
        consumer.flush()
    accepted = mixpanel_emulator.stats()["accepted"]
    assert {e: accepted[e] for e in ("track", "engage", "groups", "import")} == {
        "track": 1,
        "engage": 1,
        "groups": 1,
        "import": 1,
    }


def test_flush_sends_every_endpoints_buffer(mixpanel_emulator: Emulator) -> None:
    consumer = BufferedConsumer(max_size=50, api_host=mixpanel_emulator.base_url)
    _send_one_of_each(mixpanel.Mixpanel(TOKEN, consumer=consumer))
    assert mixpanel_emulator.stats()["accepted"]["import"] == 0  # still buffered
    consumer.flush()
    accepted = mixpanel_emulator.stats()["accepted"]
    assert [accepted[e] for e in ("track", "engage", "groups", "import")] == [1, 1, 1, 1]
    assert consumer._held.held() == 0


@pytest.fixture
def authority() -> trustme.CA:
    """A fresh certificate authority, which no client trusts unless told to."""
    return trustme.CA()


@pytest.fixture
def tls_emulator(authority: trustme.CA) -> Iterator[Emulator]:
    """The emulator behind TLS, with a certificate ``authority`` signed.

    Its port is wrapped once it listens; its records are read in process (``stats()``), as
    its HTTP control API is behind TLS too.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    with Emulator() as emulator:
        server = emulator._server
        assert server is not None
        server.socket = context.wrap_socket(server.socket, server_side=True)
        yield emulator


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
def test_verify_cert_false_sends_to_an_untrusted_certificate(
    tls_emulator: Emulator, consumer_class: Any
) -> None:
    host = f"127.0.0.1:{tls_emulator.port}"
    trusting = consumer_class(api_host=host, verify_cert=False, retry_limit=0)
    mixpanel.Mixpanel(TOKEN, consumer=trusting).track("user-1", "over TLS")
    if isinstance(trusting, BufferedConsumer):
        trusting.flush()
    assert tls_emulator.stats()["accepted"]["track"] == 1
    # And verified by default: the same send is refused, as the official consumer refuses it.
    with pytest.raises(MixpanelException):
        mixpanel.Mixpanel(TOKEN, consumer=Consumer(api_host=host, retry_limit=0)).track(
            "user-1", "not over this TLS"
        )
    assert tls_emulator.stats()["accepted"]["track"] == 1


@pytest.mark.parametrize("consumer_class", [Consumer, BufferedConsumer])
@pytest.mark.parametrize("given_as", [str, Path, os.fsencode])
def test_verify_cert_as_a_path_trusts_the_authorities_there(
    tls_emulator: Emulator,
    authority: trustme.CA,
    tmp_path: Path,
    consumer_class: Any,
    given_as: Callable[[Path], object],
) -> None:
    """As requests reads the official consumer's ``verify``: the path of the authorities to
    trust (a company's, behind a TLS-inspecting proxy). It was read as ``True``, and every
    send failed on the certificate."""
    bundle = tmp_path / "authority.pem"
    authority.cert_pem.write_to_path(str(bundle))
    host = f"127.0.0.1:{tls_emulator.port}"
    trusting = consumer_class(api_host=host, verify_cert=given_as(bundle), retry_limit=0)
    mixpanel.Mixpanel(TOKEN, consumer=trusting).track("user-1", "over TLS")
    if isinstance(trusting, BufferedConsumer):
        trusting.flush()
    assert tls_emulator.stats()["accepted"]["track"] == 1


def test_verify_cert_as_a_path_that_does_not_exist_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^verify_cert: .*nowhere\.pem.* does not exist"):
        Consumer(verify_cert=str(tmp_path / "nowhere.pem"))


def test_retry_limit_none_retries_with_no_count_limit(mixpanel_emulator: Emulator) -> None:
    """``None`` is the official consumer's urllib3 ``Retry(total=None)``: no limit on the
    count (within the time budget here). It was refused with a ``TypeError`` from a
    comparison, naming nothing."""
    mixpanel_emulator.fail_next(5, 503)
    consumer = Consumer(
        api_host=mixpanel_emulator.base_url, retry_limit=None, retry_backoff_factor=0.01
    )
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "after five 503s")
    assert mixpanel_emulator.stats()["requests"]["track"] == {"503": 5, "200": 1}
    with pytest.raises(TypeError, match=r"^retry_limit: must be a number of retries or None"):
        Consumer(retry_limit="4")  # type: ignore[arg-type]
    Consumer(retry_limit=10**400)  # as many as fit in the time budget, as before
    with pytest.raises(ValueError, match=r"^retry_limit: must be a finite number"):
        Consumer(retry_limit=float("inf"))


@pytest.mark.parametrize(("retry_limit", "retries"), [(2.0, 2), (2.5, 2), (True, 1), (-1, 0)])
def test_retry_limit_counts_as_urllib3_counts_it(
    mixpanel_emulator: Emulator, retry_limit: float, retries: int
) -> None:
    """The official consumer hands ``retry_limit`` to urllib3's ``Retry(total=)``, which takes
    any number: one retry per whole unit, none below 1. Floats and bools were refused."""
    mixpanel_emulator.fail_next(5, 503)
    consumer = Consumer(
        api_host=mixpanel_emulator.base_url, retry_limit=retry_limit, retry_backoff_factor=0.01
    )
    with pytest.raises(MixpanelException) as raised:
        mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "after 503s")
    assert mixpanel_emulator.stats()["requests"]["track"] == {"503": 1 + retries}
    # The limit is named as the limit, not as the native option the user never set.
    limit = "1 retry" if retries == 1 else f"{retries} retries"
    assert f"(the limit of {limit})" in str(raised.value)
    assert "max_retries" not in str(raised.value)


def test_api_host_none_is_refused_naming_it() -> None:
    with pytest.raises(TypeError, match=r"^api_host: must be a string, not NoneType"):
        Consumer(api_host=None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("arguments", "error", "expected"),
    [
        ({"events_url": 123}, TypeError, r"^events_url: must be a string, not int$"),
        ({"people_url": "ftp://x/engage"}, ConfigError, r"^people_url: 'ftp://x/engage' is not"),
        ({"groups_url": "https://x:99999/groups"}, ConfigError, r"^groups_url: .* invalid port"),
        (
            {"import_url": "https://u:p@x/import"},
            ValueError,
            r"^import_url: credentials in the .*; give credentials= "
            r"\(a ServiceAccountCredentials\) or an api_secret$",
        ),
        ({"api_host": "bad host!"}, ConfigError, r"^api_host: 'bad host!' has an invalid host"),
        ({"api_host": "x.example?k=v"}, ConfigError, r"^api_host: .* as events_url, people_url"),
        (
            {"events_url": "http://203.0.113.9/track"},
            ConfigError,
            r"^events_url: .* unencrypted; use https, or use the native client with "
            r"mixpanel\.allow_insecure_http = true .* \(these consumers have no such switch\)$",
        ),
    ],
)
def test_a_url_refused_names_the_argument_not_the_setting(
    arguments: dict[str, Any], error: type[Exception], expected: str
) -> None:
    """Review M1's follow-up: the refusals named the settings the arguments become
    (``mixpanel.urls.track``, ``mixpanel.api_host``) and a switch these classes do not have."""
    for consumer in (Consumer, BufferedConsumer):
        with pytest.raises(error, match=expected):
            consumer(**arguments)


def test_retry_backoff_factor_sets_the_wait_before_a_retry(mixpanel_emulator: Emulator) -> None:
    """A factor of 1.5 makes the first wait 3 s with its jitter: at least 1.5 s. The default
    factor (0.25) would wait at most 0.5 s; only a lower bound is checked, which load never
    breaks."""
    mixpanel_emulator.fail_next(1, 503)
    consumer = Consumer(
        api_host=mixpanel_emulator.base_url, retry_limit=1, retry_backoff_factor=1.5
    )
    started = time.monotonic()
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "after one 503")
    assert time.monotonic() - started >= 1.45
    assert mixpanel_emulator.stats()["requests"]["track"] == {"503": 1, "200": 1}


@pytest.mark.parametrize("factor", [20, 1000])
def test_a_retry_backoff_factor_past_the_native_cap_is_taken(factor: float) -> None:
    """The native options refuse a first wait above its cap (``backoff_base`` over
    ``backoff_cap``): the official argument, whose first wait is twice the factor, raises the
    cap with it rather than being refused."""
    options = Consumer(retry_backoff_factor=factor)._client.options
    assert options.retry_policy.base == options.retry_policy.cap == 2 * factor


def test_retry_limit_zero_sends_each_batch_once_even_one_mixpanel_refuses_in_part(
    mixpanel_emulator: Emulator,
) -> None:
    """The official consumer with ``retry_limit=0`` makes one request per batch. Finding which
    record of a batch Mixpanel refused takes more requests (halves sent as retries are), so
    with no retries none is made: the batch is reported refused whole."""
    consumer = BufferedConsumer(max_size=10, api_host=mixpanel_emulator.base_url, retry_limit=0)
    mixpanel.Mixpanel(TOKEN, consumer=consumer).track("user-1", "valid")
    mixpanel.Mixpanel("not-this-projects-token", consumer=consumer).track("user-2", "refused")
    with pytest.raises(MixpanelException) as raised:
        consumer.flush()
    assert mixpanel_emulator.stats()["requests"]["track"] == {"200": 1}
    assert len(raised.value.reports) == 2
