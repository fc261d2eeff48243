"""The built-in plugins, each registered through the ``mixpanel_core.plugins`` entry point."""
