"""The built-in transports, each registered through the ``mixpanel_core.transports`` entry point."""
