"""Counters as Prometheus text, served over HTTP."""

from __future__ import annotations

import requests

from mixpanel_core.forwarder.metrics import ForwarderMetrics, MetricsServer


def test_prometheus_text_has_every_counter_and_the_lag_per_partition() -> None:
    metrics = ForwarderMetrics(consumed=5, delivered=3, dead_lettered=1)
    metrics.lag = {("events", 0): 7, ("events", 1): 0}
    text = metrics.prometheus()
    assert "mixpanel_forwarder_records_consumed_total 5" in text
    assert "mixpanel_forwarder_records_delivered_total 3" in text
    assert "mixpanel_forwarder_records_dead_lettered_total 1" in text
    assert "mixpanel_forwarder_records_retried_total 0" in text
    assert 'mixpanel_forwarder_partition_lag{topic="events",partition="0"} 7' in text


def test_the_metrics_server_answers_scrapes_with_the_current_values() -> None:
    metrics = ForwarderMetrics()
    server = MetricsServer(metrics, "127.0.0.1", 0).start()
    try:
        metrics.delivered = 42
        answer = requests.get(f"http://127.0.0.1:{server.port}/metrics", timeout=5)
        assert answer.status_code == 200
        assert "mixpanel_forwarder_records_delivered_total 42" in answer.text
        assert requests.get(f"http://127.0.0.1:{server.port}/x", timeout=5).status_code == 404
    finally:
        server.stop()
