"""HTTP probes and waits against real loopback HTTP servers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from chaos_testlib import PRIMARY, RECOVERY, FakeService

from gameday.chaos._common import ActivityFailed
from gameday.chaos.http.actions import wait_for_all_in_region, wait_for_region
from gameday.chaos.http.probes import (
    all_services_healthy,
    service_healthy,
    services_in_region,
    serving_region,
    serving_regions,
)
from gameday.util.net import free_port

Make = Callable[..., FakeService]


def test_service_health_follows_the_answer(services: Make) -> None:
    up, down = services(PRIMARY), services(PRIMARY, status=503)
    assert service_healthy(up.url) is True
    assert service_healthy(down.url) is False
    assert service_healthy(f"http://127.0.0.1:{free_port()}", timeout_s=1) is False  # nothing listening


def test_all_services_healthy_uses_configured_urls(services: Make) -> None:
    web, orders = services(PRIMARY), services(PRIMARY)
    # JSON text, as it comes from the environment
    cfg = {"gameday_service_urls": f'{{"web": "{web.url}", "orders": "{orders.url}"}}'}
    assert all_services_healthy(configuration=cfg) is True
    orders.status = 500
    assert all_services_healthy(configuration=cfg) is False
    with pytest.raises(ActivityFailed, match="gameday_service_urls"):
        all_services_healthy(configuration={})


def test_serving_region_reads_the_header(services: Make) -> None:
    svc = services(RECOVERY)
    cfg = {"gameday_service_urls": {"orders": svc.url}}
    assert serving_region(svc.url) == RECOVERY
    assert serving_region("orders", configuration=cfg) == RECOVERY  # a service name resolves
    svc.status = 503
    with pytest.raises(ActivityFailed, match="503"):
        serving_region(svc.url)


def test_blast_radius_probe(services: Make) -> None:
    web, orders = services(PRIMARY), services(RECOVERY)
    urls = {"web": web.url, "orders": orders.url}
    assert serving_regions(urls) == {"web": PRIMARY, "orders": RECOVERY}
    assert services_in_region(PRIMARY, exclude=["orders"], urls=urls) is True
    assert services_in_region(PRIMARY, urls=urls) is False


def test_wait_for_region_sees_the_switch(services: Make) -> None:
    svc = services(PRIMARY)
    timer = threading.Timer(0.5, lambda: setattr(svc, "region", RECOVERY))
    timer.start()
    try:
        out = wait_for_region(svc.url, RECOVERY, timeout_s=10, interval_s=0.1)
    finally:
        timer.cancel()
    assert out["region"] == RECOVERY and 0.4 <= out["waited_s"] < 10


def test_wait_for_region_is_bounded(services: Make) -> None:
    svc = services(PRIMARY)
    start = time.monotonic()
    with pytest.raises(ActivityFailed, match=f"not served from {RECOVERY}.*HTTP 200 from {PRIMARY}"):
        wait_for_region(svc.url, RECOVERY, timeout_s=1.0, interval_s=0.1)
    assert time.monotonic() - start < 5


def test_wait_for_all_in_region(services: Make) -> None:
    web, orders = services(RECOVERY), services(PRIMARY)
    cfg = {"gameday_service_urls": {"web": web.url, "orders": orders.url}}
    waited = wait_for_all_in_region(RECOVERY, exclude=["orders"], timeout_s=5, configuration=cfg)
    assert set(waited) == {"web"}
    with pytest.raises(ActivityFailed):
        wait_for_all_in_region(RECOVERY, timeout_s=1, configuration=cfg)


def test_only_loopback_or_configured_targets() -> None:
    with pytest.raises(ActivityFailed, match="refusing"):
        service_healthy("http://10.20.30.40/")
    with pytest.raises(ActivityFailed, match="neither a configured service"):
        service_healthy("orders", configuration={"gameday_service_urls": {"web": "http://127.0.0.1:1"}})
