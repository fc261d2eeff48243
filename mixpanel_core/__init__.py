"""mixpanel-core: send analytics to Mixpanel fast, through a pluggable pipeline, losing nothing.

The public surface: the ``Mixpanel`` client, the message classes, ``hookimpl`` for plugins,
the transport interface, delivery reports and the error tree.
"""

from mixpanel_core.client import Mixpanel
from mixpanel_core.config import Config, load_config
from mixpanel_core.delivery import DeliveryReport, DeliveryStatus
from mixpanel_core.errors import (
    AuthenticationError,
    BuildFailedError,
    ConfigError,
    DeliveryError,
    MixpanelCoreError,
    NotJSONError,
    NotYetDeliveredError,
    PartialSendError,
    PluginError,
    Problem,
    QueueFullError,
    TransportError,
    ValidationError,
)
from mixpanel_core.hookspecs import hookimpl
from mixpanel_core.messages import (
    Alias,
    Event,
    GroupUpdate,
    ImportEvent,
    Merge,
    Message,
    PeopleUpdate,
    message_from_record,
)
from mixpanel_core.pipeline import Pipeline
from mixpanel_core.transport import Transport, TransportContext
from mixpanel_core.version import __version__

__all__ = [
    "Alias",
    "AuthenticationError",
    "BuildFailedError",
    "Config",
    "ConfigError",
    "DeliveryError",
    "DeliveryReport",
    "DeliveryStatus",
    "Event",
    "GroupUpdate",
    "ImportEvent",
    "Merge",
    "Message",
    "Mixpanel",
    "MixpanelCoreError",
    "NotJSONError",
    "NotYetDeliveredError",
    "PartialSendError",
    "PeopleUpdate",
    "Pipeline",
    "PluginError",
    "Problem",
    "QueueFullError",
    "Transport",
    "TransportContext",
    "TransportError",
    "ValidationError",
    "__version__",
    "hookimpl",
    "load_config",
    "message_from_record",
]
