"""One in-process control plane per test session (moto state is per process); reset per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from gameday.controlplane import ControlPlane


@pytest.fixture(scope="session")
def _session_cp() -> Iterator[ControlPlane]:
    cp = ControlPlane().start()
    try:
        yield cp
    finally:
        cp.stop()


@pytest.fixture()
def cp(_session_cp: ControlPlane) -> Iterator[ControlPlane]:
    _session_cp.reset()
    _session_cp.hooks.clear()
    yield _session_cp
    _session_cp.hooks.clear()


@pytest.fixture()
def client(cp: ControlPlane) -> Callable[..., Any]:
    def make(service: str, region: str = "eu-south-1") -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=cp.url,
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )

    return make
