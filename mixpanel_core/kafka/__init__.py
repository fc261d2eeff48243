"""Kafka plumbing shared by the ``kafka`` transport and the forwarder.

``kafka_python()`` imports kafka-python lazily (the ``kafka`` extra); ``headers`` names the
record headers both sides agree on; ``broker`` starts the embedded broker used by tests, the demo
and the benchmarks (or points at an external cluster); ``admin`` creates topics.
"""
