"""The errors of the ``send`` and ``replay-dead-letters`` commands (under ``MixpanelCoreError``).

::

    MixpanelCoreError
    └── CommandError        a command stopped, or finished with records left undone
        └── InputError      an input file, checkpoint or dead-letter file cannot be read

The CLI prints either as one line and exits 1.
"""

from __future__ import annotations

from mixpanel_core.errors import MixpanelCoreError


class CommandError(MixpanelCoreError):
    """A command stopped, or finished with records it could not deliver nor keep."""


class InputError(CommandError):
    """An input cannot be read; the message names the file and, when known, the place."""
