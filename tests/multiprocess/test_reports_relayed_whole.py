"""A report relayed from the sender process to the owner's hooks keeps every field, the
``maybe_applied`` flag too: a hook deciding what to replay reads it."""

from __future__ import annotations

import attrs

from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.frozen import freeze
from mixpanel_core.messages import PeopleUpdate
from mixpanel_core.multiprocess.reports import decode_report, encode_report


def test_every_field_of_a_report_survives_the_relay() -> None:
    update = PeopleUpdate(freeze({"$token": "t", "$distinct_id": "u", "$add": {"n": 1}}, "people"))
    report = DeliveryReport(
        update, DeliveryStatus.FAILED, "direct", "why", 503, 3, "f", 2.5, maybe_applied=True
    )
    relayed = decode_report(encode_report(report))
    assert attrs.asdict(relayed) == attrs.asdict(report)
    # The relay passes the fields by position, from transport to maybe_applied: a field added
    # to DeliveryReport must be added to the relay too.
    assert [f.name for f in attrs.fields(DeliveryReport)][2:] == [
        "transport",
        "reason",
        "http_status",
        "attempts",
        "field",
        "retry_after",
        "maybe_applied",
    ]
