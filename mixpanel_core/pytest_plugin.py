"""The pytest fixtures mixpanel-core ships (emulator, broker), via the ``pytest11`` entry point."""

pytest_plugins = ["mixpanel_core.emulator.fixtures", "mixpanel_core.kafka.fixtures"]
