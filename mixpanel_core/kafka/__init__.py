"""Kafka plumbing shared by the ``kafka`` transport and the forwarder.

``kafka_python()`` imports kafka-python lazily (the ``kafka`` extra) and makes its DEBUG log
safe for credentials (``log_filter``); ``options`` reads a ``kafka`` transport's table and checks
pass-through client options; ``clients`` builds a kafka-python client, translating what it
refuses; ``headers`` names the record headers both sides agree on; ``broker`` starts the
embedded broker used by tests, the demo and the benchmarks (or points at an external cluster);
``admin`` creates topics; ``log_ends`` says where a partition's log ended when a reader started.
"""
