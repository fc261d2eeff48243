"""Offset tracking: only past records that are done, whatever order they finish in."""

from __future__ import annotations

from mixpanel_core.forwarder.offsets import OffsetTracker, PartitionProgress


def test_committable_offset_stops_at_the_oldest_record_not_done() -> None:
    progress = PartitionProgress("p0")
    for offset in (10, 11, 12, 13):
        progress.read(offset)
    progress.done(12)
    progress.done(13)
    assert progress.committable == 10
    progress.done(10)
    assert progress.committable == 11
    progress.done(11)
    assert progress.committable == 14


def test_gaps_in_offsets_do_not_hold_the_commit_back() -> None:
    progress = PartitionProgress("p0")
    progress.read(5)
    progress.read(9)  # compacted topics and transaction markers leave gaps
    progress.done(9)
    progress.done(5)
    assert progress.committable == 10


def test_nothing_is_committed_before_progress_is_made() -> None:
    tracker = OffsetTracker()
    tracker.progress("p0").read(0)
    tracker.progress("p0").read(1)
    assert tracker.to_commit() == {}
    tracker.progress("p0").done(0)
    assert tracker.to_commit() == {"p0": 1}
    tracker.committed({"p0": 1})
    assert tracker.to_commit() == {}


def test_revoked_partitions_are_forgotten_and_late_completions_change_nothing() -> None:
    tracker = OffsetTracker()
    old = tracker.progress("p0")
    old.read(0)
    tracker.revoke(["p0"])
    old.done(0)  # a delivery that finished after the revocation
    assert tracker.to_commit() == {}
    assert tracker.progress("p0") is not old


def test_records_done_behind_one_not_done_are_not_counted_as_undone() -> None:
    """Under on_poison = "stop" these say whether a skip loses anything, and where it goes."""
    progress = PartitionProgress("p0")
    for offset in range(8):
        progress.read(offset)
    for offset in (0, 1, 3, 4, 5):
        progress.done(offset)  # 2 is the record to stop at; 6 and 7 were never sent
    assert progress.undone_before(6) == 1
    assert progress.undone_before(6, besides={2}) == 0
    assert progress.first_undone_after(2) == 6, "past the records done after it"
    progress.done(6)
    progress.done(7)
    assert progress.first_undone_after(2) == 8, "the next offset to read"


def test_records_done_ahead_of_the_commit_are_not_delivered_again_when_read_again() -> None:
    """Review F1, H1: /engage records accepted while an earlier /track record of their
    partition still failed were sent again when the partition came back to this consumer
    (each ``$add`` applied twice): the commit could not pass the event."""
    tracker = OffsetTracker()
    progress = tracker.progress("p0")
    for offset in (0, 1, 2, 3):
        progress.read(offset)
    progress.done(1)  # the profile updates, accepted
    progress.done(3)
    resume = tracker.revoke(["p0"])["p0"]
    assert (resume.offset, resume.done) == (0, frozenset({1, 3}))
    tracker.resume("p0", resume)
    again = tracker.progress("p0")
    read_again = []
    for offset in (0, 1, 2, 3):
        again.read(offset)
        if not again.done_before(offset):
            read_again.append(offset)
    assert read_again == [0, 2]  # the events, to deliver; the updates are done already
    assert again.committable == 0
    again.done(0)
    again.done(2)
    assert again.committable == 4
    assert tracker.to_commit() == {"p0": 4}
