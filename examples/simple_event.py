"""The official "post an event" demo, on mixpanel-core, configured by TOML.

python examples/simple_event.py [--config examples/simple_event.toml]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mixpanel_core import Mixpanel

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(HERE / "simple_event.toml"))
    args = parser.parse_args()
    with Mixpanel.from_config(args.config) as mp:
        mp.track("ID", "Script run", {"trial": True})
        mp.people_set("ID", {"$first_name": "Ada", "$last_name": "Lovelace"})


if __name__ == "__main__":
    main()
