"""``$insert_id``s: the right shape, unique, never shared by a forked child, and derivable."""

from __future__ import annotations

import os
import re

from mixpanel_core.insert_id import InsertIdGenerator, derived_insert_id


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


def test_derived_ids_depend_only_on_the_natural_key() -> None:
    assert derived_insert_id("topic", 1, 42) == derived_insert_id("topic", 1, 42)
    assert derived_insert_id("topic", 1, 42) != derived_insert_id("topic", 1, 43)
    assert re.fullmatch(r"[0-9a-f]{32}", derived_insert_id("file", 7))
