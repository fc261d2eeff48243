"""``metrics_host`` takes IPv6 addresses: the metrics endpoint binds ``::1`` and ``::`` with the
IPv6 family; an address that is not this machine's stays a configuration error naming the key,
found before anything connects to Kafka. Needs IPv6 loopback: without it every test here fails
saying so, never skips."""

from __future__ import annotations

import re
import signal
import socket

import pytest
import requests

from mixpanel_core.forwarder.metrics import ForwarderMetrics, MetricsServer

from .conftest import ForwardingRig, wait_until


@pytest.fixture(autouse=True)
def ipv6_loopback() -> None:
    """A host without IPv6 loopback fails these tests with the reason, not a bind error."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as exc:
        missing = str(exc)
    else:
        return
    pytest.fail(
        f"these tests need IPv6 loopback (::1), which this host lacks ({missing}); enable it "
        "(sysctl net.ipv6.conf.lo.disable_ipv6=0, or IPv6 in the container's network)",
        pytrace=False,
    )


def _free_ipv6_port() -> int:
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port: int = probe.getsockname()[1]
        return port


def _scrape(url: str) -> str:
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 200
    return answer.text


def test_the_metrics_server_binds_ipv6_loopback() -> None:
    metrics = ForwarderMetrics(delivered=7)
    server = MetricsServer(metrics, "::1", 0).start()
    try:
        text = _scrape(f"http://[::1]:{server.port}/metrics")
        assert "mixpanel_forwarder_records_delivered_total 7" in text
    finally:
        server.stop()


def test_the_metrics_server_on_the_ipv6_any_address_serves_ipv6_and_ipv4_scrapers() -> None:
    """``::`` is every interface, as ``0.0.0.0`` is, and takes IPv4 scrapers too."""
    server = MetricsServer(ForwarderMetrics(delivered=3), "::", 0).start()
    try:
        for host in ("[::1]", "127.0.0.1"):
            text = _scrape(f"http://{host}:{server.port}/metrics")
            assert "mixpanel_forwarder_records_delivered_total 3" in text
    finally:
        server.stop()


@pytest.mark.integration
def test_a_forwarder_with_metrics_host_ipv6_loopback_serves_its_counters_there(
    rig: ForwardingRig,
) -> None:
    rig.produce_events(20)
    port = _free_ipv6_port()
    process = rig.start(rig.write_config({"metrics_port": port, "metrics_host": "::1"}))

    def delivered() -> float:
        try:
            text = _scrape(f"http://[::1]:{port}/metrics")
        except requests.ConnectionError:  # not listening yet
            return 0
        found = re.search(r"^mixpanel_forwarder_records_delivered_total (\S+)$", text, re.M)
        return float(found.group(1)) if found else 0

    wait_until(lambda: delivered() == 20, 60)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr
    assert f"metrics at http://[::1]:{port}/metrics" in stderr, stderr


@pytest.mark.integration
def test_an_ipv6_metrics_host_not_of_this_machine_is_a_config_error_before_kafka(
    rig: ForwardingRig,
) -> None:
    """2001:db8::/32 is for documentation: no machine has it. The brokers are a closed port:
    had the forwarder connected to Kafka first, it would fail on that instead."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    config = rig.write_config({"metrics_port": 0, "metrics_host": "2001:db8::1"})
    text = config.read_text()
    assert rig.bootstrap in text
    config.write_text(text.replace(rig.bootstrap, f"127.0.0.1:{closed}"))

    code, stderr = rig.run_until_caught_up(config, timeout=60)

    assert code == 1, stderr
    assert "Traceback" not in stderr, stderr
    assert "forwarder.metrics_host: cannot serve metrics on [2001:db8::1]:0" in stderr, stderr
