"""``python -m mixpanel_core``: the ``mixpanel-core`` command, where its script is not on
``PATH`` (a virtual environment not activated, a container's interpreter)."""

import sys

from mixpanel_core.cli import main

if __name__ == "__main__":  # not when imported (the docs tests import every module)
    sys.exit(main())
