"""Documentation is part of the feature: these fail when a hook or a config key is undocumented.

- every hook spec has a section in docs/hooks.md headed by its exact signature, and a test
  whose name starts with the hook's name;
- every configuration class (an attrs class whose fields are declared with ``setting()``) in
  the packages has a table in docs/ listing exactly its keys, with the right type and default.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import attrs
import pytest

import mixpanel_core
import plugins
import transports
from mixpanel_core import hookspecs
from mixpanel_core.schema import describe

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
HOOKS = [name for name in dir(hookspecs) if name.startswith("mixpanel_")]


def signature_of(name: str) -> str:
    text = f"{name}{inspect.signature(getattr(hookspecs, name))}"
    return text.replace("'", "")


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_section_headed_by_its_signature(hook: str) -> None:
    headings = re.findall(r"^## `(.+)`$", (DOCS / "hooks.md").read_text(), re.MULTILINE)
    assert signature_of(hook) in headings, f"docs/hooks.md lacks '## `{signature_of(hook)}`'"


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_test_named_after_it(hook: str) -> None:
    pattern = re.compile(rf"^\s*def test_{hook}\w*\(", re.MULTILINE)
    found = [p for p in (ROOT / "tests").rglob("test_*.py") if pattern.search(p.read_text())]
    assert found, f"no test function named test_{hook}..."


def config_classes() -> list[type]:
    found: dict[str, type] = {}
    for package in (mixpanel_core, plugins, transports):
        for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if ".emulator" in info.name and "config" not in info.name:
                continue
            module = importlib.import_module(info.name)
            for value in vars(module).values():
                if (
                    isinstance(value, type)
                    and value.__module__ == module.__name__
                    and attrs.has(value)
                    and attrs.fields(value)
                    and all("doc" in f.metadata for f in attrs.fields(value))
                ):
                    found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[k] for k in sorted(found)]


def doc_tables() -> list[dict[str, tuple[str, str]]]:
    """Markdown tables headed ``key | type | default``, as ``{key: (type, default)}``."""
    tables: list[dict[str, tuple[str, str]]] = []
    for path in DOCS.rglob("*.md"):
        current: dict[str, tuple[str, str]] | None = None
        for line in path.read_text().splitlines():
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if cells[:3] == ["key", "type", "default"]:
                current = {}
                tables.append(current)
            elif current is not None and cells and cells[0].startswith("`"):
                clean = [c.replace("`", "").replace("\\|", "|") for c in cells]
                current[clean[0]] = (clean[1], clean[2])
            elif current is not None and not line.startswith("|"):
                current = None
    return tables


def test_config_classes_are_found() -> None:
    names = {cls.__name__ for cls in config_classes()}
    assert {"MixpanelSettings", "PipelineSettings", "RouteConfig", "LimitsOptions"} <= names


@pytest.mark.parametrize("cls", config_classes(), ids=lambda c: c.__name__)
def test_every_config_class_has_a_reference_table(cls: type) -> None:
    """A table lists exactly the class's keys. A base of other config classes (a group of
    options several transports share) may be listed inside a larger table; a class made only
    of such groups is documented by their tables."""
    rows = {key: (kind, default) for key, kind, default, _ in describe(cls)}
    classes = config_classes()
    inherited = {
        key
        for base in classes
        if base is not cls and issubclass(cls, base)
        for key in rows
        if key in {k for k, *_ in describe(base)}
    }
    if rows and set(rows) == inherited:
        return  # every key comes from config-class bases, each checked on its own
    is_base = any(other is not cls and issubclass(other, cls) for other in classes)
    tables = [t for t in doc_tables() if set(t) == set(rows) or (is_base and set(t) > set(rows))]
    assert tables, f"no table in docs/ lists exactly the keys of {cls.__name__}: {sorted(rows)}"
    assert any(all(t[key] == row for key, row in rows.items()) for t in tables), (
        f"docs/ disagrees with {cls.__name__} on a type or default; expected rows {rows}, "
        f"found {tables}"
    )
