"""``mixpanel-core plugins``: what transports and plugins are installed, and from where."""

from __future__ import annotations

import argparse
from importlib.metadata import EntryPoint

from mixpanel_core.registry import (
    PLUGIN_GROUP,
    TRANSPORT_GROUP,
    ImportFailedError,
    clashes,
    declarations,
    distribution_of,
    exited,
    import_target,
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plugins",
        help="list installed transports and plugins",
        description="List the transports and plugins found through entry points, with the "
        "distribution that provides each. A name two distributions declare is listed once per "
        "declaration and marked CLASH: a configuration that uses it is refused until all but "
        "one of them are uninstalled. One that cannot be imported is marked BROKEN, with what "
        "importing it raised.",
        epilog="example: mixpanel-core plugins",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    clashing: list[str] = []
    broken: list[str] = []
    for title, group in (("transports", TRANSPORT_GROUP), ("plugins", PLUGIN_GROUP)):
        print(f"{title} ({group}):")
        for name, found in sorted(declarations(group).items()):
            # Every declaration, not one per name: the one left out would be the one that
            # silently replaced the other.
            mark = "  CLASH" if clashes(found) else ""
            if mark:
                clashing.append(f"{title[:-1]} {name!r}")
            for entry_point in found:
                # Imported, as a configuration naming it would: listed like the others, one
                # that fails (a missing module, a syntax error) showed up only once enabled.
                failure = _import_failure(entry_point)
                if failure:
                    broken.append(f"{title[:-1]} {name!r}")
                print(
                    f"  {name:<24} {entry_point.value:<48} {distribution_of(entry_point)}"
                    f"{mark}{failure}"
                )
    if clashing:
        print(
            f"CLASH: {', '.join(clashing)} declared by more than one distribution; a "
            "configuration that uses one of them is refused (ConfigError) until all but one "
            "of its distributions are uninstalled"
        )
    if broken:
        print(
            f"BROKEN: {', '.join(broken)} cannot be imported; a configuration that uses one of "
            "them is refused (ConfigError) until its distribution is fixed or uninstalled"
        )
    return 0


def _import_failure(entry_point: EntryPoint) -> str:
    """``  BROKEN (what importing it raised)``, or nothing when it imports."""
    try:
        import_target(entry_point)
    except ImportFailedError as failed:
        error = failed.error
        said = (
            exited(error) if isinstance(error, SystemExit) else f"{type(error).__name__}: {error}"
        )
        return f"  BROKEN ({said})"
    return ""
