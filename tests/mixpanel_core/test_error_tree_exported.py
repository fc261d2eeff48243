"""Every error docs/errors.md lists can be imported from ``mixpanel_core`` itself.

Review N1: ``PartialSendError`` and ``NotJSONError`` were only in ``mixpanel_core.errors``,
though the docs present them with the others, which ``mixpanel_core`` exports.
"""

from __future__ import annotations

import inspect

import mixpanel_core
from mixpanel_core import errors


def test_every_error_class_is_exported_at_the_top() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value)
        and issubclass(value, BaseException)
        and value.__module__ == errors.__name__
    }
    assert {"PartialSendError", "NotJSONError", "ValidationError"} <= classes
    assert classes <= set(mixpanel_core.__all__)
    for name in classes:
        assert getattr(mixpanel_core, name) is getattr(errors, name)
