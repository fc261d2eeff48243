"""The official "post an event" demo, on mixpanel-core, configured by TOML.

python examples/simple_event.py [--config examples/simple_event.toml]

With the default configuration it starts the Mixpanel emulator in a subprocess, sends to it
and prints what it received; with a configuration of your own it only sends.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from mixpanel_core import Mixpanel
from mixpanel_core.emulator import EmulatorProcess

HERE = Path(__file__).resolve().parent
DEFAULT_CONFIG = HERE / "simple_event.toml"


def post_an_event(config: str) -> None:
    with Mixpanel.from_config(config) as mp:
        mp.track("ID", "Script run", {"trial": True})
        mp.people_set("ID", {"$first_name": "Ada", "$last_name": "Lovelace"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    args = parser.parse_args()
    if Path(args.config).resolve() != DEFAULT_CONFIG:
        post_an_event(args.config)
        return
    with EmulatorProcess() as emulator:
        os.environ["MIXPANEL_DEMO_API_HOST"] = emulator.base_url
        post_an_event(args.config)
        print(f"the emulator at {emulator.base_url} received:")
        for endpoint in ("track", "engage"):
            for record in emulator.client.records(endpoint):
                print(f"  {endpoint}: {record}")


if __name__ == "__main__":
    main()
