"""Sub-commands of the ``mixpanel-core`` command line, one module each."""
