"""Global Accelerator JSON 1.1 transport: ``X-Amz-Target: GlobalAccelerator_V20180706.<Action>``.

Translates requests into calls on ``models.ga_backends[account]`` and model errors into the AWS
JSON error shape (``__type``, HTTP 400) that SDKs and the terraform provider understand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gameday.controlplane.globalaccelerator.models import (
    DEFAULT_ACCOUNT,
    GlobalAcceleratorBackend,
    GlobalAcceleratorError,
    ga_backends,
)

TARGET_PREFIX = "GlobalAccelerator_V20180706."
CONTENT_TYPE = "application/x-amz-json-1.1"

Handler = Callable[[GlobalAcceleratorBackend, dict[str, Any]], dict[str, Any]]


def _req(p: dict[str, Any], key: str) -> Any:
    if p.get(key) in (None, ""):
        raise GlobalAcceleratorError("InvalidArgumentException", f"{key} is required")
    return p[key]


def _create_accelerator(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    acc = b.create_accelerator(
        name=_req(p, "Name"),
        enabled=bool(p.get("Enabled", True)),
        ip_address_type=p.get("IpAddressType") or "IPV4",
        ip_addresses=p.get("IpAddresses"),
        tags=p.get("Tags"),
        idempotency_token=p.get("IdempotencyToken"),
    )
    return {"Accelerator": acc.to_json()}


def _update_accelerator(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    acc = b.update_accelerator(
        _req(p, "AcceleratorArn"),
        name=p.get("Name"),
        enabled=p.get("Enabled"),
        ip_address_type=p.get("IpAddressType"),
    )
    return {"Accelerator": acc.to_json()}


def _update_attributes(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    acc = b.update_accelerator_attributes(
        _req(p, "AcceleratorArn"),
        p.get("FlowLogsEnabled"),
        p.get("FlowLogsS3Bucket"),
        p.get("FlowLogsS3Prefix"),
    )
    return {"AcceleratorAttributes": acc.attributes_json()}


def _delete_accelerator(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    b.delete_accelerator(_req(p, "AcceleratorArn"))
    return {}


def _list_accelerators(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    with b.lock:
        return {"Accelerators": [a.to_json() for a in b.accelerators.values()]}


def _create_listener(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    li = b.create_listener(
        _req(p, "AcceleratorArn"),
        _req(p, "PortRanges"),
        p.get("Protocol") or "TCP",
        p.get("ClientAffinity") or "NONE",
    )
    return {"Listener": li.to_json()}


def _update_listener(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    li = b.update_listener(
        _req(p, "ListenerArn"), p.get("PortRanges"), p.get("Protocol"), p.get("ClientAffinity")
    )
    return {"Listener": li.to_json()}


def _delete_listener(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    b.delete_listener(_req(p, "ListenerArn"))
    return {}


def _create_endpoint_group(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    g = b.create_endpoint_group(_req(p, "ListenerArn"), _req(p, "EndpointGroupRegion"), p)
    return {"EndpointGroup": g.to_json()}


def _update_endpoint_group(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    return {"EndpointGroup": b.update_endpoint_group(_req(p, "EndpointGroupArn"), p).to_json()}


def _delete_endpoint_group(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    b.delete_endpoint_group(_req(p, "EndpointGroupArn"))
    return {}


def _add_endpoints(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    arn = _req(p, "EndpointGroupArn")
    added = b.add_endpoints(arn, _req(p, "EndpointConfigurations"))
    return {"EndpointDescriptions": [e.to_json() for e in added], "EndpointGroupArn": arn}


def _remove_endpoints(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    ids = [e["EndpointId"] for e in _req(p, "EndpointIdentifiers")]
    b.remove_endpoints(_req(p, "EndpointGroupArn"), ids)
    return {}


def _tag(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    b.tag_resource(_req(p, "ResourceArn"), _req(p, "Tags"))
    return {}


def _untag(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    b.untag_resource(_req(p, "ResourceArn"), _req(p, "TagKeys"))
    return {}


def _list_tags(b: GlobalAcceleratorBackend, p: dict[str, Any]) -> dict[str, Any]:
    tags = b.list_tags(_req(p, "ResourceArn"))
    return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}


HANDLERS: dict[str, Handler] = {
    "CreateAccelerator": _create_accelerator,
    "DescribeAccelerator": lambda b, p: {
        "Accelerator": b.get_accelerator(_req(p, "AcceleratorArn")).to_json()
    },
    "UpdateAccelerator": _update_accelerator,
    "DeleteAccelerator": _delete_accelerator,
    "ListAccelerators": _list_accelerators,
    "DescribeAcceleratorAttributes": lambda b, p: {
        "AcceleratorAttributes": b.get_accelerator(_req(p, "AcceleratorArn")).attributes_json()
    },
    "UpdateAcceleratorAttributes": _update_attributes,
    "CreateListener": _create_listener,
    "DescribeListener": lambda b, p: {"Listener": b.get_listener(_req(p, "ListenerArn")).to_json()},
    "UpdateListener": _update_listener,
    "DeleteListener": _delete_listener,
    "ListListeners": lambda b, p: {
        "Listeners": [li.to_json() for li in b.list_listeners(_req(p, "AcceleratorArn"))]
    },
    "CreateEndpointGroup": _create_endpoint_group,
    "DescribeEndpointGroup": lambda b, p: {
        "EndpointGroup": b.get_endpoint_group(_req(p, "EndpointGroupArn")).to_json()
    },
    "UpdateEndpointGroup": _update_endpoint_group,
    "DeleteEndpointGroup": _delete_endpoint_group,
    "ListEndpointGroups": lambda b, p: {
        "EndpointGroups": [g.to_json() for g in b.list_endpoint_groups(_req(p, "ListenerArn"))]
    },
    "AddEndpoints": _add_endpoints,
    "RemoveEndpoints": _remove_endpoints,
    "TagResource": _tag,
    "UntagResource": _untag,
    "ListTagsForResource": _list_tags,
    # No cross-account attachments in the sandbox; the provider lists them on every endpoint-group read.
    "ListCrossAccountResources": lambda b, p: {"CrossAccountResources": []},
    "ListCrossAccountAttachments": lambda b, p: {"CrossAccountAttachments": []},
    "ListCrossAccountResourceAccounts": lambda b, p: {"ResourceOwnerAwsAccountIds": []},
}


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"__type": code, "message": message, "Message": message}).encode()


def dispatch(
    action: str, body: bytes, account_id: str = DEFAULT_ACCOUNT
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Answer one request: (HTTP status, headers, JSON body)."""
    try:
        params = json.loads(body) if body else {}
        if not isinstance(params, dict):
            raise ValueError("body is not a JSON object")
    except ValueError as exc:
        return _error(GlobalAcceleratorError("SerializationException", f"bad JSON body: {exc}"))
    handler = HANDLERS.get(action)
    if handler is None:
        return _error(
            GlobalAcceleratorError(
                "UnknownOperationException",
                f"operation {action} is not emulated by the gameday control plane",
            )
        )
    try:
        result = handler(ga_backends[account_id], params)
    except GlobalAcceleratorError as exc:
        return _error(exc)
    except (KeyError, TypeError, ValueError) as exc:
        return _error(GlobalAcceleratorError("InvalidArgumentException", f"invalid request: {exc}"))
    return 200, [("Content-Type", CONTENT_TYPE)], json.dumps(result).encode()


def _error(exc: GlobalAcceleratorError) -> tuple[int, list[tuple[str, str]], bytes]:
    headers = [("Content-Type", CONTENT_TYPE), ("x-amzn-ErrorType", exc.code)]
    return exc.status, headers, error_body(exc.code, exc.message)
