"""Global Accelerator state: accelerators, listeners, endpoint groups, tags — keyed by account id.

Kept apart from the HTTP layer so the sandbox controller (same process) can read traffic dials
and health-check settings directly, and mark endpoints healthy/unhealthy.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

DEFAULT_ACCOUNT = "123456789012"
HOSTED_ZONE_ID = "Z2BJ6XQ5FK7U4H"


class GlobalAcceleratorError(Exception):
    """An AWS-shaped error: ``code`` becomes ``__type`` in the JSON answer (HTTP 400)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def _not_found(kind: str, arn: str) -> GlobalAcceleratorError:
    return GlobalAcceleratorError(f"{kind}NotFoundException", f"{kind} {arn} not found")


@dataclass
class Accelerator:
    arn: str
    name: str
    enabled: bool = True
    ip_address_type: str = "IPV4"
    status: str = "DEPLOYED"
    dns_name: str = ""
    dual_stack_dns_name: str | None = None
    ip_addresses: list[str] = field(default_factory=list)
    flow_logs_enabled: bool = False
    flow_logs_s3_bucket: str | None = None
    flow_logs_s3_prefix: str | None = None
    created: float = field(default_factory=time.time)
    last_modified: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "AcceleratorArn": self.arn,
            "Name": self.name,
            "IpAddressType": self.ip_address_type,
            "Enabled": self.enabled,
            "IpSets": [
                {"IpFamily": "IPv4", "IpAddressFamily": "IPv4", "IpAddresses": list(self.ip_addresses)}
            ],
            "DnsName": self.dns_name,
            "Status": self.status,
            "CreatedTime": self.created,
            "LastModifiedTime": self.last_modified,
            "Events": [],
        }
        if self.dual_stack_dns_name:
            out["DualStackDnsName"] = self.dual_stack_dns_name
        return out

    def attributes_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"FlowLogsEnabled": self.flow_logs_enabled}
        if self.flow_logs_s3_bucket:
            out["FlowLogsS3Bucket"] = self.flow_logs_s3_bucket
        if self.flow_logs_s3_prefix:
            out["FlowLogsS3Prefix"] = self.flow_logs_s3_prefix
        return out


@dataclass
class Listener:
    arn: str
    accelerator_arn: str
    port_ranges: list[dict[str, int]]
    protocol: str = "TCP"
    client_affinity: str = "NONE"

    def to_json(self) -> dict[str, Any]:
        return {
            "ListenerArn": self.arn,
            "PortRanges": [dict(p) for p in self.port_ranges],
            "Protocol": self.protocol,
            "ClientAffinity": self.client_affinity,
        }


@dataclass
class Endpoint:
    endpoint_id: str
    weight: int = 128
    client_ip_preservation_enabled: bool = False
    health_state: str = "HEALTHY"
    health_reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EndpointId": self.endpoint_id,
            "Weight": self.weight,
            "HealthState": self.health_state,
            "ClientIPPreservationEnabled": self.client_ip_preservation_enabled,
        }
        if self.health_reason:
            out["HealthReason"] = self.health_reason
        return out


@dataclass
class EndpointGroup:
    arn: str
    listener_arn: str
    region: str
    endpoints: list[Endpoint] = field(default_factory=list)
    traffic_dial_percentage: float = 100.0
    health_check_port: int = 80
    health_check_protocol: str = "TCP"
    health_check_path: str = "/"
    health_check_interval_seconds: int = 30
    threshold_count: int = 3
    port_overrides: list[dict[str, int]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "EndpointGroupArn": self.arn,
            "EndpointGroupRegion": self.region,
            "EndpointDescriptions": [e.to_json() for e in self.endpoints],
            "TrafficDialPercentage": self.traffic_dial_percentage,
            "HealthCheckPort": self.health_check_port,
            "HealthCheckProtocol": self.health_check_protocol,
            "HealthCheckIntervalSeconds": self.health_check_interval_seconds,
            "ThresholdCount": self.threshold_count,
            "PortOverrides": [dict(p) for p in self.port_overrides],
        }
        if self.health_check_protocol in ("HTTP", "HTTPS"):
            out["HealthCheckPath"] = self.health_check_path
        return out


def _endpoints(configs: list[dict[str, Any]] | None) -> list[Endpoint]:
    out = []
    for c in configs or []:
        if not c.get("EndpointId"):
            raise GlobalAcceleratorError("InvalidArgumentException", "EndpointId is required")
        out.append(
            Endpoint(
                endpoint_id=str(c["EndpointId"]),
                weight=int(c.get("Weight", 128)),
                client_ip_preservation_enabled=bool(c.get("ClientIPPreservationEnabled", False)),
            )
        )
    return out


def _bounded(value: Any, lo: float, hi: float, name: str) -> float:
    v = float(value)
    if not lo <= v <= hi:
        raise GlobalAcceleratorError("InvalidArgumentException", f"{name} must be between {lo} and {hi}")
    return v


class GlobalAcceleratorBackend:
    """One account's Global Accelerator resources; every method is safe to call from any thread."""

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.lock = threading.RLock()
        self.accelerators: dict[str, Accelerator] = {}
        self.listeners: dict[str, Listener] = {}
        self.endpoint_groups: dict[str, EndpointGroup] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self._tokens: dict[str, str] = {}

    # accelerators -------------------------------------------------------------------------
    def create_accelerator(
        self,
        name: str,
        enabled: bool = True,
        ip_address_type: str = "IPV4",
        ip_addresses: list[str] | None = None,
        tags: list[dict[str, str]] | None = None,
        idempotency_token: str | None = None,
    ) -> Accelerator:
        with self.lock:
            if idempotency_token and idempotency_token in self._tokens:
                existing = self.accelerators.get(self._tokens[idempotency_token])
                if existing is not None:
                    return existing
            arn = f"arn:aws:globalaccelerator::{self.account_id}:accelerator/{uuid.uuid4()}"
            host = "a" + secrets.token_hex(8)
            n = len(self.accelerators) % 250 + 1
            acc = Accelerator(
                arn=arn,
                name=name,
                enabled=enabled,
                ip_address_type=ip_address_type,
                dns_name=f"{host}.awsglobalaccelerator.com",
                dual_stack_dns_name=f"{host}.dualstack.awsglobalaccelerator.com"
                if ip_address_type == "DUAL_STACK"
                else None,
                ip_addresses=list(ip_addresses) if ip_addresses else [f"75.2.{n}.{n}", f"99.83.{n}.{n}"],
            )
            self.accelerators[arn] = acc
            self.tags[arn] = {t["Key"]: t.get("Value", "") for t in tags or []}
            if idempotency_token:
                self._tokens[idempotency_token] = arn
            return acc

    def get_accelerator(self, arn: str) -> Accelerator:
        with self.lock:
            if arn not in self.accelerators:
                raise _not_found("Accelerator", arn)
            return self.accelerators[arn]

    def update_accelerator(
        self,
        arn: str,
        name: str | None = None,
        enabled: bool | None = None,
        ip_address_type: str | None = None,
    ) -> Accelerator:
        with self.lock:
            acc = self.get_accelerator(arn)
            if name is not None:
                acc.name = name
            if enabled is not None:
                acc.enabled = enabled
            if ip_address_type is not None:
                acc.ip_address_type = ip_address_type
            acc.last_modified = time.time()
            return acc

    def update_accelerator_attributes(
        self,
        arn: str,
        flow_logs_enabled: bool | None = None,
        bucket: str | None = None,
        prefix: str | None = None,
    ) -> Accelerator:
        with self.lock:
            acc = self.get_accelerator(arn)
            if flow_logs_enabled is not None:
                acc.flow_logs_enabled = flow_logs_enabled
            if bucket is not None:
                acc.flow_logs_s3_bucket = bucket
            if prefix is not None:
                acc.flow_logs_s3_prefix = prefix
            return acc

    def delete_accelerator(self, arn: str) -> None:
        with self.lock:
            acc = self.get_accelerator(arn)
            if acc.enabled:
                raise GlobalAcceleratorError(
                    "AcceleratorNotDisabledException",
                    f"accelerator {arn} must be disabled before it is deleted",
                )
            if any(li.accelerator_arn == arn for li in self.listeners.values()):
                raise GlobalAcceleratorError(
                    "AssociatedListenerFoundException", f"accelerator {arn} still has listeners"
                )
            del self.accelerators[arn]
            self.tags.pop(arn, None)

    # listeners ----------------------------------------------------------------------------
    def create_listener(
        self,
        accelerator_arn: str,
        port_ranges: list[dict[str, int]],
        protocol: str = "TCP",
        client_affinity: str = "NONE",
    ) -> Listener:
        with self.lock:
            self.get_accelerator(accelerator_arn)
            if not port_ranges:
                raise GlobalAcceleratorError("InvalidArgumentException", "PortRanges is required")
            arn = f"{accelerator_arn}/listener/{secrets.token_hex(4)}"
            li = Listener(
                arn=arn,
                accelerator_arn=accelerator_arn,
                port_ranges=[dict(p) for p in port_ranges],
                protocol=protocol,
                client_affinity=client_affinity,
            )
            self.listeners[arn] = li
            return li

    def get_listener(self, arn: str) -> Listener:
        with self.lock:
            if arn not in self.listeners:
                raise _not_found("Listener", arn)
            return self.listeners[arn]

    def update_listener(
        self,
        arn: str,
        port_ranges: list[dict[str, int]] | None = None,
        protocol: str | None = None,
        client_affinity: str | None = None,
    ) -> Listener:
        with self.lock:
            li = self.get_listener(arn)
            if port_ranges:
                li.port_ranges = [dict(p) for p in port_ranges]
            if protocol:
                li.protocol = protocol
            if client_affinity:
                li.client_affinity = client_affinity
            return li

    def delete_listener(self, arn: str) -> None:
        with self.lock:
            self.get_listener(arn)
            if any(g.listener_arn == arn for g in self.endpoint_groups.values()):
                raise GlobalAcceleratorError(
                    "AssociatedEndpointGroupFoundException", f"listener {arn} still has endpoint groups"
                )
            del self.listeners[arn]

    def list_listeners(self, accelerator_arn: str) -> list[Listener]:
        with self.lock:
            self.get_accelerator(accelerator_arn)
            return [li for li in self.listeners.values() if li.accelerator_arn == accelerator_arn]

    # endpoint groups ----------------------------------------------------------------------
    def create_endpoint_group(self, listener_arn: str, region: str, params: dict[str, Any]) -> EndpointGroup:
        # IdempotencyToken (required by AWS): a retried request with the token of a create that
        # already succeeded returns that group; a new token for the same listener and region still
        # gets EndpointGroupAlreadyExistsException. An SDK retry after a connection dropped
        # mid-response under load re-sends the same token.
        # https://docs.aws.amazon.com/global-accelerator/latest/api/API_CreateEndpointGroup.html
        # https://docs.aws.amazon.com/global-accelerator/latest/api/Welcome.html ("idempotency")
        token = params.get("IdempotencyToken")
        with self.lock:
            if token and token in self._tokens:
                existing = self.endpoint_groups.get(self._tokens[token])
                if existing is not None and existing.listener_arn == listener_arn and existing.region == region:
                    return existing
            li = self.get_listener(listener_arn)
            if any(
                g.listener_arn == listener_arn and g.region == region for g in self.endpoint_groups.values()
            ):
                raise GlobalAcceleratorError(
                    "EndpointGroupAlreadyExistsException",
                    f"listener {listener_arn} already has an endpoint group in {region}",
                )
            arn = f"{listener_arn}/endpoint-group/{secrets.token_hex(6)}"
            group = EndpointGroup(
                arn=arn,
                listener_arn=listener_arn,
                region=region,
                health_check_port=int(li.port_ranges[0]["FromPort"]),
            )
            self._apply_group_params(group, params)
            self.endpoint_groups[arn] = group
            if token:
                self._tokens[token] = arn
            return group

    def _apply_group_params(self, group: EndpointGroup, p: dict[str, Any]) -> None:
        if "EndpointConfigurations" in p:
            group.endpoints = _endpoints(p["EndpointConfigurations"])
        if p.get("TrafficDialPercentage") is not None:
            group.traffic_dial_percentage = _bounded(
                p["TrafficDialPercentage"], 0, 100, "TrafficDialPercentage"
            )
        if p.get("HealthCheckPort") is not None:
            group.health_check_port = int(_bounded(p["HealthCheckPort"], 1, 65535, "HealthCheckPort"))
        if p.get("HealthCheckProtocol"):
            if p["HealthCheckProtocol"] not in ("TCP", "HTTP", "HTTPS"):
                raise GlobalAcceleratorError(
                    "InvalidArgumentException", "HealthCheckProtocol must be TCP|HTTP|HTTPS"
                )
            group.health_check_protocol = p["HealthCheckProtocol"]
        if p.get("HealthCheckPath"):
            group.health_check_path = str(p["HealthCheckPath"])
        if p.get("HealthCheckIntervalSeconds") is not None:
            group.health_check_interval_seconds = int(
                _bounded(p["HealthCheckIntervalSeconds"], 10, 30, "HealthCheckIntervalSeconds")
            )
        if p.get("ThresholdCount") is not None:
            group.threshold_count = int(_bounded(p["ThresholdCount"], 1, 10, "ThresholdCount"))
        if "PortOverrides" in p and p["PortOverrides"] is not None:
            group.port_overrides = [dict(o) for o in p["PortOverrides"]]

    def get_endpoint_group(self, arn: str) -> EndpointGroup:
        with self.lock:
            if arn not in self.endpoint_groups:
                raise _not_found("EndpointGroup", arn)
            return self.endpoint_groups[arn]

    def update_endpoint_group(self, arn: str, params: dict[str, Any]) -> EndpointGroup:
        with self.lock:
            group = self.get_endpoint_group(arn)
            old = {e.endpoint_id: e for e in group.endpoints}
            self._apply_group_params(group, params)
            for e in group.endpoints:  # keep observed health across reconfiguration
                if e.endpoint_id in old:
                    e.health_state, e.health_reason = (
                        old[e.endpoint_id].health_state,
                        old[e.endpoint_id].health_reason,
                    )
            return group

    def delete_endpoint_group(self, arn: str) -> None:
        with self.lock:
            self.get_endpoint_group(arn)
            del self.endpoint_groups[arn]

    def list_endpoint_groups(self, listener_arn: str) -> list[EndpointGroup]:
        with self.lock:
            self.get_listener(listener_arn)
            return [g for g in self.endpoint_groups.values() if g.listener_arn == listener_arn]

    def add_endpoints(self, arn: str, configs: list[dict[str, Any]]) -> list[Endpoint]:
        with self.lock:
            group = self.get_endpoint_group(arn)
            new = _endpoints(configs)
            ids = {e.endpoint_id for e in new}
            group.endpoints = [e for e in group.endpoints if e.endpoint_id not in ids] + new
            return new

    def remove_endpoints(self, arn: str, endpoint_ids: list[str]) -> None:
        with self.lock:
            group = self.get_endpoint_group(arn)
            group.endpoints = [e for e in group.endpoints if e.endpoint_id not in set(endpoint_ids)]

    def set_endpoint_health(
        self, group_arn: str, endpoint_id: str, state: str, reason: str | None = None
    ) -> None:
        """For the sandbox controller: record what the health checks see (HEALTHY/UNHEALTHY/INITIAL)."""
        with self.lock:
            for e in self.get_endpoint_group(group_arn).endpoints:
                if e.endpoint_id == endpoint_id:
                    e.health_state, e.health_reason = state, reason

    # tags ---------------------------------------------------------------------------------
    def _taggable(self, arn: str) -> dict[str, str]:
        if arn in self.accelerators or arn in self.listeners or arn in self.endpoint_groups:
            return self.tags.setdefault(arn, {})
        raise _not_found("Accelerator", arn)

    def tag_resource(self, arn: str, tags: list[dict[str, str]]) -> None:
        with self.lock:
            self._taggable(arn).update({t["Key"]: t.get("Value", "") for t in tags})

    def untag_resource(self, arn: str, keys: list[str]) -> None:
        with self.lock:
            table = self._taggable(arn)
            for k in keys:
                table.pop(k, None)

    def list_tags(self, arn: str) -> dict[str, str]:
        with self.lock:
            return dict(self._taggable(arn))

    def reset(self) -> None:
        with self.lock:
            self.accelerators.clear()
            self.listeners.clear()
            self.endpoint_groups.clear()
            self.tags.clear()
            self._tokens.clear()


class GlobalAcceleratorBackends(dict[str, GlobalAcceleratorBackend]):
    """``ga_backends[account_id]``; a backend is created on first use, like moto's BackendDict."""

    _lock = threading.Lock()

    def __missing__(self, account_id: str) -> GlobalAcceleratorBackend:
        with self._lock:
            if account_id not in self:
                super().__setitem__(account_id, GlobalAcceleratorBackend(account_id))
            return super().__getitem__(account_id)

    def reset(self) -> None:
        for backend in list(self.values()):
            backend.reset()


ga_backends = GlobalAcceleratorBackends()
