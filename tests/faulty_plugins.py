"""Sources of plugins with a bug of their own, for tests that install them through real entry
points (``mixpanel_core.testing.install_distribution``)."""

STRICT = '''\
from mixpanel_core import hookimpl


class Strict:
    """Refuses nothing, but fails on an event with a ``boom`` property (a bug of its own)."""

    @hookimpl
    def mixpanel_validate(self, message):
        properties = message.record["properties"]
        if "boom" in properties:
            return [properties["plan"]]  # KeyError: 'plan'
        return []
'''
"""A module holding ``Strict``: its ``mixpanel_validate`` raises ``KeyError: 'plan'`` on an
event with a ``boom`` property."""
