"""Creating topics for tests, the demo and the benchmarks (production topics are the operator's)."""

from __future__ import annotations

from mixpanel_core.errors import TransportError
from mixpanel_core.kafka.client_library import kafka_python
from mixpanel_core.kafka.clients import build_client


def create_topic(bootstrap_servers: str, topic: str, partitions: int = 1) -> None:
    """Create ``topic`` with ``partitions`` partitions; an existing topic is left as it is."""
    kafka = kafka_python()
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    settings = {"bootstrap_servers": bootstrap_servers, "client_id": "mixpanel-admin"}
    admin = build_client(
        kafka.KafkaAdminClient, settings, "bootstrap_servers", (), "the topic-creating admin client"
    )
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    except Exception as exc:
        raise TransportError(f"cannot create topic {topic!r}: {exc}") from exc
    finally:
        admin.close()
