"""``super_properties`` in a child forked while another thread of the parent's registered."""

from __future__ import annotations

import os
import threading

from mixpanel_core import Mixpanel
from mixpanel_core.config import config_from_mapping
from mixpanel_core.testing import MemoryTransport


def test_a_child_forked_during_a_register_on_another_thread_can_register() -> None:
    config = config_from_mapping({"plugins": {"enabled": ["super_properties"]}})
    transport = MemoryTransport()
    client = Mixpanel("token", transport, config=config)
    supers = client.plugin("super_properties")
    inside, leave = threading.Event(), threading.Event()

    def register_in_progress() -> None:
        # Stands for a register() on another thread at the moment of the fork: holding the
        # lock makes the moment certain (a busy loop of register() hung half the children).
        with supers._lock:
            inside.set()
            leave.wait(30)

    holder = threading.Thread(target=register_in_progress)
    holder.start()
    try:
        assert inside.wait(30)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit code, skip everything else
            done = threading.Event()

            def work() -> None:
                supers.register({"child": 1})
                client.track("u", "e")
                done.set()

            threading.Thread(target=work, daemon=True).start()
            returned = done.wait(10)
            added = returned and transport.records()[-1]["properties"].get("child") == 1
            os._exit(0 if added else 3)
        _, status = os.waitpid(pid, 0)
    finally:
        leave.set()
        holder.join()
    assert os.waitstatus_to_exitcode(status) == 0, "the child's register() did not return"
    supers.register({"parent": 1})  # the parent's lock is its own still
    assert supers.properties == {"parent": 1}
