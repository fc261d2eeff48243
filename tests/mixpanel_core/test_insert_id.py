"""``$insert_id``s: the right shape, unique, never shared by a forked child, and derivable."""

from __future__ import annotations

import os
import re

from mixpanel_core.insert_id import InsertIdGenerator, derived_insert_id

from ..subprocesses import derived_insert_id_in_a_fresh_interpreter


def test_ids_are_32_lowercase_hex_and_unique() -> None:
    generator = InsertIdGenerator()
    ids = [generator() for _ in range(10_000)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    assert len(set(ids)) == len(ids)
    assert InsertIdGenerator()() not in set(ids)


def test_a_forked_child_draws_a_new_sequence() -> None:
    generator = InsertIdGenerator()
    generator()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id and leave at once
        os.write(write, generator().encode())
        os._exit(0)
    os.close(write)
    child_id = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    parent_ids = {generator() for _ in range(1000)}
    assert re.fullmatch(r"[0-9a-f]{32}", child_id)
    assert child_id not in parent_ids


# Pinned: the ids already sent to Mixpanel (and written to dead-letter topics) were derived
# this way; any change of the derivation, per process or per release, breaks deduplication.
PINNED = {
    ("topic", 1, 42): "568e8e735f672007a62f19feb37b596a",
    ("topic", 1, 43): "fcc755b274d9fd5f9dac1c36a19eaa66",
    ("file", 7): "16be62ed5f012cfac1751219ad3af863",
}


def test_derived_ids_depend_only_on_the_natural_key() -> None:
    for key, expected in PINNED.items():
        assert derived_insert_id(*key) == expected, key
        assert derived_insert_id_in_a_fresh_interpreter(*key) == expected, key
    assert derived_insert_id("topic", 1, 42) == derived_insert_id("topic", 1, 42)
    assert re.fullmatch(r"[0-9a-f]{32}", derived_insert_id("file", 7))
