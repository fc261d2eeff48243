"""The error ``Forwarder.run`` raises when it stops on records under ``on_poison = "stop"``.

It says where each record is, what is committed of its partition, and whether skipping it (by
committing the offset it names) loses nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from mixpanel_core.forwarder.config import ForwarderError
from mixpanel_core.forwarder.dead_lettering import PoisonStop
from mixpanel_core.forwarder.offsets import OffsetTracker


def poison_stop_error(
    stops: Sequence[PoisonStop], tracker: OffsetTracker, group_id: str
) -> ForwarderError:
    """Why the forwarder stops under ``on_poison = "stop"``, once what was read before the
    records to stop at was delivered and committed (as far as it could be): where each is,
    what is committed, and whether skipping it (with the records rejected together with
    it) loses nothing, which is the case only when every other record read before the
    offset to commit is done."""
    said = []
    for stop in stops:
        progress, offset, last = stop.progress, stop.offset, stop.last
        partition = progress.partition
        name = f"{partition.topic}[{partition.partition}]"
        text = f"stopping at {stop.where} ({stop.stage}): {stop.reason}. on_poison is 'stop'"
        if stop.together and stop.maybe_applied:
            text += (
                f"; {len(stop.together)} more records of {name}, up to offset {last}, sent in "
                "the same requests, failed the same way"
            )
        elif stop.together:
            text += (
                f"; Mixpanel gave the same answer for {len(stop.together)} more records of "
                f"{name}, up to offset {last}: when it rejects a whole request (a status 0 "
                "from /engage or /groups), it may already have applied some of its "
                "records, and would apply them again if they were sent again, as a restart "
                "that does not skip them does"
            )
        if not tracker.is_current(progress):
            # Revoked, and perhaps assigned back to this consumer: then it was read again
            # from its first record not done, and ignored (it has a stop).
            said.append(
                f"{text}; {name} was revoked (and perhaps assigned again) while stopping, "
                "so what was read of it after its last commit is read again, and "
                f"whichever consumer reads it next stops at offset {offset} again."
            )
            continue
        undone = progress.undone_before(last + 1, besides=stop.offsets)
        committed = tracker.last_committed(partition)
        if undone:
            at = (
                "nothing of it was committed"
                if committed is None
                else f"it stays committed at offset {committed}"
            )
            before = (
                "before it"
                if not stop.together
                else f"up to offset {last}, besides those rejected with it,"
            )
            said.append(
                f"{text}; {undone} records read {before} on {name} (from offset "
                f"{progress.committable}) were not delivered before stopping (see the "
                f"log above), so {at}. Do not skip the record yet: committing past it "
                "would lose them. Start the forwarder again once Mixpanel takes them: it "
                f"delivers them and stops at offset {offset} again."
            )
            continue
        if committed == offset:
            done = (
                f"every record before it on {name} is delivered, and offset {offset} is committed"
            )
        elif committed is None and progress.start == offset:
            done = f"it is the first record read on {name}: nothing before it was waiting"
        else:
            done = (
                f"every record before it on {name} is delivered, but committing offset "
                f"{offset} did not go through (see the log above)"
            )
        said.append(f"{text}; {done}. {skip_advice(stop, name, group_id)}")
    said.append("Or set forwarder.on_poison = 'dead_letter' with a dead_letter_topic.")
    return ForwarderError(" ".join(said))


def skip_advice(stop: PoisonStop, name: str, group_id: str) -> str:
    """How to skip ``stop`` losing nothing, once every other record before it is done.

    The offset to commit is the first record after the stop's last one not done: past
    the records rejected with it, and past those after it Mixpanel accepted already (sent
    in its request, or to another endpoint, before it was found), which a skip to the
    offset after it alone would send again (a profile $add applied twice).
    """
    last = stop.last
    found = stop.progress.first_undone_after(last)
    skip_to = last + 1 if found is None else found
    where = f"offset {skip_to} on {name} for group {group_id!r}"
    delivered = (
        ""
        if skip_to == last + 1
        else f" (offsets {last + 1} to {skip_to - 1} after it were delivered already)"
    )
    if stop.maybe_applied:
        # Nothing to fix, and neither way is safe unseen: a skip loses an update Mixpanel
        # did not apply, a restart applies again one it did.
        these, look = ("it", "the profile it updates")
        if stop.together:
            these, look = ("them", "the profiles they update")
        return (
            f"Mixpanel may or may not have applied {these}: look at {look}. If applied, skip "
            f"{these} by committing {where}{delivered}: nothing before {these} is lost. If "
            f"not, start the forwarder again: it sends {these} again."
        )
    if not stop.together and stop.in_refused_request:
        # Alone on its partition in a request Mixpanel refused in part (with other
        # partitions' records): not necessarily what is wrong, and perhaps applied (review
        # R56 F2: "Fix it and start again" applied its $add twice).
        return (
            f"It and everything after it on {name} stay uncommitted. Skip it by committing "
            f"{where}{delivered}: nothing before it is lost. Mixpanel refused the request it "
            "was sent in without naming the records it refused, and kept the others: if this "
            "one is valid it was applied, and starting again without the skip applies it "
            "again; if it is the one refused, fix it and produce it again."
        )
    if not stop.together:
        return (
            f"It and everything after it on {name} stay uncommitted. Fix it and start "
            f"again, or skip it by committing {where}{delivered}: nothing before it is "
            "lost."
        )
    return (
        f"They and everything after them on {name} stay uncommitted. Skip them all by "
        f"committing {where}{delivered}: nothing before them is lost, and those Mixpanel "
        "refused can be fixed and produced again."
    )
