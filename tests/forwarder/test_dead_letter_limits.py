"""Dead letters at the producer's limits, against the real broker: a record too big to
dead-letter whole is dead-lettered cut down; one that cannot fit at all stops the forwarder
after it commits what it had done."""

from __future__ import annotations

import pytest

from mixpanel_core.forwarder.dead_letters import PREFIX, TRUNCATED_HEADER
from mixpanel_core.kafka import headers

from .conftest import ForwardingRig

pytestmark = pytest.mark.integration

RUN_TIMEOUT = 90.0
SECRET = "hunter2-sasl-password"


@pytest.fixture
def rig_partitions() -> int:
    """One partition: offsets then say exactly what was committed."""
    return 1


def _near_one_mib_poison() -> bytes:
    """JSON, but not an event record (so poison); its dead letter exceeds 1 MiB with headers."""
    return b"[" + b"1," * 524_200 + b"1]"


def test_a_poison_record_too_big_to_dead_letter_whole_is_dead_lettered_truncated(
    rig: ForwardingRig,
) -> None:
    rig.produce_raw(b"[1, 2]", [(headers.ENDPOINT, b"track")])
    poison = _near_one_mib_poison()
    # The default producer (max_request_size 1 MiB) takes the record itself.
    rig.produce_raw(poison, [(headers.ENDPOINT, b"track")])
    good = rig.produce_events(1)

    code, stderr = rig.run_until_caught_up(rig.write_config(plugins=[]))

    assert code == 0, stderr
    assert rig.delivered_insert_ids() == good
    assert rig.committed() == {0: 3}
    small, letter = rig.dead_letters(2)
    # A dead letter that fits is sent whole, unmarked.
    assert small.value == b"[1, 2]"
    assert TRUNCATED_HEADER not in {k for k, _ in small.headers}
    why = {k: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}
    assert why[PREFIX + "source-topic"] == rig.topic
    assert why[PREFIX + "source-partition"] == "0"
    assert why[PREFIX + "source-offset"] == "1"
    assert why[PREFIX + "stage"] == "decode"
    assert why[TRUNCATED_HEADER] == str(len(poison))
    assert letter.key == b"raw"
    assert (headers.ENDPOINT, b"track") in letter.headers
    assert 0 < len(letter.value) < len(poison)
    assert poison.startswith(letter.value)
    assert len(letter.value) > len(poison) - 4096, "cut to fit, not emptied"


def test_a_dead_letter_that_cannot_fit_stops_with_a_forwarder_error_after_committing_what_was_done(
    rig: ForwardingRig,
) -> None:
    """A dead letter the producer refuses even cut down (its headers alone exceed the
    producer's max_request_size) is fatal, but not silent: what was delivered before it is
    committed, and the error names the record and never the producer's options."""
    good = rig.produce_events(1)
    rig.produce_rejected_import()  # Mixpanel rejects it: it goes to the dead letters
    good += rig.produce_events(1, prefix="late")
    config = rig.write_config({"linger": 1.0}, plugins=[])
    # The dead-letter producer takes the source transport's producer options.
    config.write_text(
        config.read_text()
        + f'\n[transports.bus.producer]\nmax_request_size = 300\nsasl_plain_password = "{SECRET}"\n'
    )

    code, stderr = rig.run_until_caught_up(config)

    assert code == 1, stderr
    assert f"{rig.topic}[0]@1" in stderr
    assert "max_request_size" in stderr
    assert SECRET not in stderr
    # Offsets 0 and 2 were accepted in the same batch; the commit stops before offset 1.
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    assert rig.committed() == {0: 1}


def test_a_poison_record_whose_own_headers_exceed_the_limit_is_dead_lettered_without_them(
    rig: ForwardingRig,
) -> None:
    """Its headers alone did not fit the dead-letter producer: the forwarder stopped on it at
    every start, and the records read before it were not delivered (review R64 F2). Now its
    largest headers are left out, as few as will do, and the dead letter says how many."""
    good = rig.produce_events(1)
    blob = b"x" * 3000
    rig.produce_raw(b"not json", [(headers.ENDPOINT, b"track"), ("blob", blob)])
    good += rig.produce_events(1, prefix="late")
    config = rig.write_config(plugins=[])
    config.write_text(config.read_text() + "\n[transports.bus.producer]\nmax_request_size = 2500\n")

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert sorted(rig.delivered_insert_ids()) == sorted(good)
    assert rig.committed() == {0: 3}
    (letter,) = rig.dead_letters(1)
    names = [name for name, _ in letter.headers]
    assert "blob" not in names
    assert (headers.ENDPOINT, b"track") in letter.headers
    why = {k: v.decode() for k, v in letter.headers if k.startswith(PREFIX)}
    assert why[PREFIX + "headers-dropped"] == "1"
    assert why[PREFIX + "source-offset"] == "1"
    assert TRUNCATED_HEADER not in why  # the value fits whole once the header is out
    assert letter.value == b"not json"


def test_an_own_header_named_like_a_dead_letter_header_is_left_out_too(
    rig: ForwardingRig,
) -> None:
    """The record's own headers were told by name: a large ``dead-letter-trace`` of its own
    (a dead letter sent back to the source topic) was never left out, and the forwarder
    stopped on the record at every start (review R65)."""
    good = rig.produce_events(1)
    rig.produce_raw(b"not json", [(headers.ENDPOINT, b"track"), (PREFIX + "trace", b"x" * 3000)])
    config = rig.write_config(plugins=[])
    config.write_text(config.read_text() + "\n[transports.bus.producer]\nmax_request_size = 2500\n")

    code, stderr = rig.run_until_caught_up(config)

    assert code == 0, stderr
    assert rig.delivered_insert_ids() == good
    (letter,) = rig.dead_letters(1)
    assert PREFIX + "trace" not in [name for name, _ in letter.headers]
    assert (PREFIX + "headers-dropped", b"1") in letter.headers
    assert letter.value == b"not json"
