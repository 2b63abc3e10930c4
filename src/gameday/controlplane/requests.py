"""Work out (service, action, region, params) of a raw AWS HTTP request.

Query-protocol services name the action in ``Action=``, JSON services in ``X-Amz-Target``;
REST services (S3, Route 53, FIS...) only by method + path, which we match against botocore's
own service model so every operation is named exactly as boto3 names it.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote

from gameday.controlplane.hooks import normalize_service

_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class RequestInfo:
    service: str
    action: str
    region: str
    params: dict[str, Any]


def _botocore_name(service: str, params: dict[str, Any]) -> str:
    if service == "elasticloadbalancing":
        return "elbv2" if params.get("Version") == "2015-12-01" else "elb"
    return normalize_service(service)


@functools.lru_cache(maxsize=64)
def _rest_routes(
    service: str,
) -> list[tuple[str, re.Pattern[str], tuple[str, ...], tuple[str, ...], str, int]]:
    """(method, path regex, required query keys, required headers, operation, specificity)."""
    import botocore.session

    try:
        model = botocore.session.get_session().get_service_model(service)
    except Exception:
        return []
    routes = []
    for op_name in model.operation_names:
        http = model.operation_model(op_name).http
        uri = http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        qkeys = tuple(k.split("=", 1)[0] for k in query.split("&") if k)
        shape = model.operation_model(op_name).input_shape
        headers: tuple[str, ...] = ()
        if shape is not None:
            headers = tuple(
                "HTTP_" + str(shape.members[m].serialization.get("name", m)).upper().replace("-", "_")
                for m in shape.required_members
                if m in shape.members and shape.members[m].serialization.get("location") == "header"
            )
            qkeys += tuple(
                str(shape.members[m].serialization.get("name", m))
                for m in shape.required_members
                if m in shape.members and shape.members[m].serialization.get("location") == "querystring"
            )
        literal = 0
        pattern = ""
        for part in re.split(r"(\{[^}]+\})", path):
            if part.startswith("{"):
                name = part[1:-1]
                greedy = name.endswith("+")
                name = name.rstrip("+")
                pattern += f"(?P<{re.sub(r'[^0-9A-Za-z_]', '_', name)}>{'.+' if greedy else '[^/]+'})"
            else:
                literal += len(part)
                pattern += re.escape(part)
        regex = re.compile("^" + pattern.rstrip("/") + "/?$")
        spec = literal * 10 + (len(qkeys) + len(headers)) * 100
        routes.append((http.get("method", "POST"), regex, qkeys, headers, op_name, spec))
    routes.sort(key=lambda r: -r[5])
    return routes


def _rest_action(
    service: str, environ: dict[str, Any], path: str, query: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    method = environ.get("REQUEST_METHOD", "GET")
    for m, regex, qkeys, headers, op, _spec in _rest_routes(service):
        if m != method:
            continue
        match = regex.match(path)
        if match and all(k in query for k in qkeys) and all(h in environ for h in headers):
            return op, {k: unquote(v) for k, v in match.groupdict().items()}
    return f"{method} {path}", {}


def identify(environ: dict[str, Any], body: bytes) -> RequestInfo:
    """Best-effort identification; never raises (unknown parts come back as empty strings)."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    m = _SCOPE.search(auth)
    region, signing = (m.group(1), m.group(2)) if m else ("", "")
    query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
    params: dict[str, Any] = dict(query)
    ctype = environ.get("CONTENT_TYPE", "") or ""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if ctype.startswith("application/x-www-form-urlencoded") and body:
        params.update(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    elif body and ("json" in ctype or target):
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                params.update(parsed)
        except ValueError:
            pass
    service = _botocore_name(signing, params) if signing else ""
    if target:
        action = target.rsplit(".", 1)[-1]
    elif "Action" in params:
        action = str(params["Action"])
    elif service:
        path = environ.get("PATH_INFO", "/") or "/"
        action, uri_params = _rest_action(service, environ, path, query)
        params.update(uri_params)
    else:
        action = ""
    return RequestInfo(service=service, action=action, region=region, params=params)
