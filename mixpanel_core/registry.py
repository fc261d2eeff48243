"""Discovering transports and plugins through entry points, ours exactly like anyone's.

Two ways an installation can make a name load something other than what was meant:

- two distributions declare the same name (a clash): which one ``importlib.metadata``
  yields first depends on where each is installed, so neither is loaded (``ConfigError``);
- an application's own package shadows the target's top-level package: our built-ins live
  in the top-level packages ``transports`` and ``plugins``, and an application package of
  that name earlier on ``sys.path`` (its directory, the current directory) is found instead
  of ours. The import then fails, and the error says which package hid ours and where.
"""

from __future__ import annotations

import functools
import signal
import sys
from collections.abc import Sequence
from importlib.machinery import PathFinder
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import CodeType

from mixpanel_core.errors import ConfigError

TRANSPORT_GROUP = "mixpanel_core.transports"
PLUGIN_GROUP = "mixpanel_core.plugins"


def declarations(group: str) -> dict[str, tuple[EntryPoint, ...]]:
    """Every declaration of each name of ``group``, in the order ``sys.path`` finds them.

    A name with more than one target is a clash (see ``clashes``): ``load`` refuses it. The
    same distribution found twice, or two declaring the very same target, count once.

    Finding them reads the metadata of every installed distribution: about 5 ms, paid by
    every pipeline built, in every process (each worker of a ``multiprocessing_queue``
    builds one). So the answer is kept for as long as ``sys.path`` stays the same, and
    ``load`` looks again before it says a name is not installed.
    """
    return dict(_scan(group, tuple(sys.path)))


def discover(group: str) -> dict[str, EntryPoint]:
    """Installed entry points of ``group`` by name: the first declaration of each.

    For listing. A clashing name is here too, with one of its declarations; ``declarations``
    shows them all, and ``load`` refuses to pick one.
    """
    return {name: found[0] for name, found in declarations(group).items()}


def clashes(found: Sequence[EntryPoint]) -> bool:
    """Whether the declarations of one name point at more than one target (the module and
    object, whatever spaces or extras each wrote around them)."""
    return len({(entry_point.module, entry_point.attr) for entry_point in found}) > 1


@functools.lru_cache(maxsize=8)
def _scan(group: str, search_path: tuple[str, ...]) -> dict[str, tuple[EntryPoint, ...]]:
    # ``entry_points`` yields each distribution once, the first found on sys.path (an
    # editable install reachable through two entries, a wheel beside it): one declaration.
    found: dict[str, list[EntryPoint]] = {}
    for entry_point in entry_points(group=group):
        found.setdefault(entry_point.name, []).append(entry_point)
    return {name: tuple(entries) for name, entries in found.items()}


def load(group: str, name: str, path: str) -> object:
    """Load entry point ``name``; ``path`` is the config key that named it, for the error."""
    found = declarations(group)
    if name not in found:
        # Installed since the last look, perhaps (into a directory already on the path).
        _scan.cache_clear()
        found = declarations(group)
    what = "transport" if group == TRANSPORT_GROUP else "plugin"
    if name not in found:
        installed = ", ".join(sorted(found)) or "none"
        raise ConfigError(f"{path}: no {what} named {name!r} is installed; installed: {installed}")
    entries = found[name]
    if clashes(entries):
        # Uninstalled since the last look, perhaps, as this very error asks: look again.
        _scan.cache_clear()
        entries = declarations(group).get(name, entries)
    if clashes(entries):
        declared = ", ".join(f"{distribution_of(ep)} ({ep.value})" for ep in entries)
        distributions = {distribution_of(ep) for ep in entries}
        if len(distributions) == 1:
            raise ConfigError(
                f"{path}: {distributions.pop()} declares {len(entries)} {what}s named "
                f"{name!r} ({', '.join(ep.value for ep in entries)}), so none is loaded: its "
                f"entry points must name each {what} once (a fault of that distribution)"
            )
        raise ConfigError(
            f"{path}: {len(entries)} installed distributions declare a {what} named {name!r}: "
            f"{declared}; which one would load depends on the order of sys.path, so none "
            f"is loaded: uninstall all but one of them (`mixpanel-core plugins` lists every "
            f"declaration)"
        )
    entry_point = entries[0]
    try:
        return import_target(entry_point)
    except ImportFailedError as failed:  # a broken third-party package must not look like ours
        exc = failed.error
    # Raised out of the handler, so that its context is not ImportFailedError, ours only.
    said = exited(exc) if isinstance(exc, SystemExit) else f"{exc}{_hidden_by(entry_point, exc)}"
    raise ConfigError(f"{path}: {name!r} is installed but failed to import: {said}") from exc


def exited(exc: SystemExit) -> str:
    """``SystemExit: CODE`` (of a subclass too: it is the exit that counts), or ``SystemExit``."""
    return f"SystemExit: {exc}" if str(exc) else "SystemExit"


class ImportFailedError(Exception):
    """What importing an entry point's target raised (``error``): see ``import_target``."""

    def __init__(self, error: Exception | SystemExit) -> None:
        super().__init__(type(error).__name__)  # its text is the third party's to make, if read
        self.error = error


def import_target(entry_point: EntryPoint) -> object:
    """The object ``entry_point`` names, imported; ``ImportFailedError`` holding what the import
    raised, a ``SystemExit`` of the module's own too (``sys.exit()``, ``exit()`` or argparse
    as it is imported), which would otherwise end the application at its first ``track()``,
    silently, with exit code 0. Not one a signal handler raised meanwhile (the application's
    SIGTERM handler calling ``sys.exit()``): the application asked to end, and it must."""
    handlers = signal_handlers()
    try:
        return entry_point.load()
    except SystemExit as exc:
        if raised_by_a_signal_handler(exc, handlers):
            raise
        raise ImportFailedError(exc) from exc
    except Exception as exc:
        raise ImportFailedError(exc) from exc


def signal_handlers() -> frozenset[CodeType]:
    """The code of each Python signal handler installed now (functions, methods, partials and
    objects with ``__call__``): see ``raised_by_a_signal_handler``."""
    found = set()
    for signum in signal.valid_signals():
        try:
            handler = signal.getsignal(signum)
        except (OSError, ValueError):  # pragma: no cover (a signal the platform cannot query)
            continue
        handler = getattr(handler, "func", handler)  # a functools.partial
        function = getattr(handler, "__func__", handler)  # a bound method
        code = getattr(function, "__code__", None)
        if code is None and callable(function) and not isinstance(function, type):
            # An object's: its class's method (or a base class's).
            kinds = type(function).__mro__
            call = next((k.__dict__["__call__"] for k in kinds if "__call__" in k.__dict__), None)
            code = getattr(call, "__code__", None)
        if code is not None:
            found.add(code)
    return frozenset(found)


def raised_by_a_signal_handler(exc: BaseException, before: frozenset[CodeType]) -> bool:
    """Whether ``exc`` went through a signal handler, one installed now or ``before`` the import
    began (a one-shot handler resets itself): a SIGTERM handler calling ``sys.exit()`` while an
    import was under way. The application asked to end, and must. A ``SystemExit`` raised
    otherwise during an import is the imported code's own doing (``sys.exit()``, ``exit()``,
    argparse), whatever function it was raised in."""
    handlers = before | signal_handlers()
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code in handlers:
            return True
        tb = tb.tb_next
    return False


def distribution_of(entry_point: EntryPoint) -> str:
    """The name and version of the distribution that declares ``entry_point``."""
    dist = entry_point.dist
    return f"{dist.name} {dist.version}" if dist is not None else "unknown"


def _hidden_by(entry_point: EntryPoint, exc: Exception) -> str:
    """What to add to the error when a package of the target's top-level name was imported
    but lacks the module the entry point names.

    When another package of that name, further along sys.path, has it, the imported one hides
    it (an application's own ``plugins``); otherwise the distribution itself lacks it. Judged
    only once the import has failed: telling whose a file is, in every way a distribution can
    be installed, is not certain enough to refuse an import that works.
    """
    missing = exc.name if isinstance(exc, ModuleNotFoundError) else None
    target = entry_point.module
    top = target.split(".")[0]
    if not missing or missing == top or not f"{target}.".startswith(f"{missing}."):
        return ""
    found = getattr(sys.modules.get(top), "__file__", None)
    if found is None:
        return ""
    dist = distribution_of(entry_point)
    hidden = _package_holding(top, missing, found)
    if hidden is None:
        return (
            f"; the package {top!r} ({found}) has no {missing!r}, and no other {top!r} on"
            f" sys.path has it: reinstall {dist}"
        )
    return (
        f"; the package {top!r} was imported from {found}, which has no {missing!r}: it hides"
        f" the one {dist} installed ({hidden}), being earlier on sys.path (the application's"
        " directory, the current directory, PYTHONPATH); rename it (or make it a subpackage"
        " of the application's own package), or take its directory off sys.path"
    )


def _package_holding(top: str, missing: str, imported: str) -> str | None:
    """The directory of a package ``top`` on sys.path, other than the one imported (from file
    ``imported``), that holds module ``missing``; found by looking, without importing."""
    below = missing.split(".")[1:]
    for entry in sys.path:
        spec = PathFinder.find_spec(top, [entry or "."])
        if spec is None or spec.origin == imported or not spec.submodule_search_locations:
            continue
        for directory in spec.submodule_search_locations:
            place = Path(directory).joinpath(*below)
            if place.with_suffix(".py").is_file() or (place / "__init__.py").is_file():
                return directory
    return None
