"""RDS control-plane fidelity: what moto accepts but AWS refuses, and DescribeDBInstances as the data plane is.

moto answers ``RebootDBInstance(ForceFailover=true)`` for any instance and always reports
``DBInstanceStatus = available``. The sandbox answers instead of moto where AWS differs:

- ForceFailover on an instance that is not Multi-AZ is refused (HTTP 400) and injects nothing;
- a reboot of an instance that is not ``available`` is refused, as AWS does;
- ``DBInstanceStatus`` of the primary is the data plane's real state (``rebooting`` from the
  reboot/failover/detected crash until the writer accepts writes again, then ``available``);
- a ModifyDBInstance that changes ``MultiAZ`` is refused: the data plane is built from the
  Terraform's ``multi_az`` at start and converting a running instance is not emulated.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from xml.sax.saxutils import escape

from gameday.controlplane.hooks import ApiCall, Hooks, Response
from gameday.errors import SandboxError
from gameday.target import SANDBOX_ACCOUNT as ACCOUNT

#: RebootDBInstance, request parameter ForceFailover: "Constraint: You can't enable force failover if
#: the instance isn't configured for Multi-AZ."
#: (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html). AWS's error
#: list for that API does not name the code for this constraint; it is the common error for
#: parameters that must not be used together, "InvalidParameterCombination ... HTTP Status Code: 400"
#: (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/CommonErrors.html).
FORCE_FAILOVER_CODE = "InvalidParameterCombination"
FORCE_FAILOVER_MESSAGE = "You can't enable force failover if the instance isn't configured for Multi-AZ."

#: "You can't reboot your DB instance if it isn't in the Available state."
#: (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RebootInstance.html); the API's
#: documented error: "InvalidDBInstanceState: The DB instance isn't in a valid state. HTTP Status Code: 400"
#: (https://docs.aws.amazon.com/AmazonRDS/latest/APIReference/API_RebootDBInstance.html).
NOT_AVAILABLE_CODE = "InvalidDBInstanceState"

_RDS_XMLNS = "http://rds.amazonaws.com/doc/2014-10-31/"

#: (region, DB instance identifier) -> live DBInstanceStatus of the data plane behind it
_STATUS_SOURCES: dict[tuple[str, str], Callable[[], str]] = {}
_patch_lock = threading.Lock()
_patched = False


def error_response(code: str, message: str, status: int = 400) -> Response:
    """An RDS (query protocol) error document, as AWS sends it."""
    body = (f'<ErrorResponse xmlns="{_RDS_XMLNS}"><Error><Type>Sender</Type><Code>{escape(code)}</Code>'
            f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return status, [("Content-Type", "text/xml")], body


def db_instance(region: str, identifier: str) -> Any:
    """moto's DBInstance in this process (the daemon runs moto in-process), or None."""
    from moto.rds.models import rds_backends

    return rds_backends[ACCOUNT][region].databases.get(identifier)


@dataclass(frozen=True)
class InstanceSettings:
    """What the Terraform (or later API calls) configured on the primary instance."""

    multi_az: bool
    engine_version: str | None


def instance_settings(region: str, identifier: str) -> InstanceSettings:
    db = db_instance(region, identifier)
    if db is None:
        raise SandboxError(f"RDS instance {identifier} not found in {region}: was the Terraform applied?")
    return InstanceSettings(multi_az=bool(db.multi_az), engine_version=getattr(db, "engine_version", None))


def _patch_status() -> None:
    """DBInstance.status reads the registered data plane first (class-level, survives moto resets)."""
    global _patched
    with _patch_lock:
        if _patched:
            return
        from moto.rds.models import DBInstance

        def get(self: Any) -> str:
            source = _STATUS_SOURCES.get((getattr(self, "region", ""), self.db_instance_identifier))
            if source is not None:
                return source()
            return str(self.__dict__.get("_gameday_status", "available"))

        def put(self: Any, value: str) -> None:
            self.__dict__["_gameday_status"] = value

        DBInstance.status = property(get, put)  # type: ignore[assignment]
        _patched = True


class RdsControlPlane:
    """The RDS API calls the sandbox answers itself, for one primary instance and its replica."""

    def __init__(self, hooks: Hooks, pg: Any, *, primary_region: str, primary_identifier: str) -> None:
        self.hooks = hooks
        self.pg = pg
        self.primary_region = primary_region
        self.primary_identifier = primary_identifier

    def install(self) -> RdsControlPlane:
        _patch_status()
        _STATUS_SOURCES[(self.primary_region, self.primary_identifier)] = self.pg.instance_status
        self.hooks.override("rds", "RebootDBInstance", self.on_reboot)
        self.hooks.override("rds", "ModifyDBInstance", self.on_modify)
        return self

    def uninstall(self) -> None:
        _STATUS_SOURCES.pop((self.primary_region, self.primary_identifier), None)
        self.hooks.remove(self.on_reboot)
        self.hooks.remove(self.on_modify)

    def on_reboot(self, call: ApiCall) -> Response | None:
        """Refuse what AWS refuses; mark the primary ``rebooting`` before moto answers an accepted call."""
        ident = str(call.params.get("DBInstanceIdentifier", ""))
        db = db_instance(call.region, ident)
        if db is None:
            return None  # moto answers DBInstanceNotFound
        force = str(call.params.get("ForceFailover", "false")).lower() == "true"
        if force and not bool(db.multi_az):
            return error_response(FORCE_FAILOVER_CODE, FORCE_FAILOVER_MESSAGE)
        is_primary = (call.region, ident) == (self.primary_region, self.primary_identifier)
        if is_primary:
            status = self.pg.instance_status()
            if status != "available":
                return error_response(NOT_AVAILABLE_CODE, f"Database instance is not in available state "
                                                          f"(DBInstanceStatus {status}).")
            self.pg.begin_reboot("RebootDBInstance with failover" if force else "RebootDBInstance")
        return None

    def on_modify(self, call: ApiCall) -> Response | None:
        """Refuse a MultiAZ conversion: the data plane's topology was fixed at start from the Terraform."""
        if "MultiAZ" not in call.params:
            return None
        ident = str(call.params.get("DBInstanceIdentifier", ""))
        db = db_instance(call.region, ident)
        if db is None:
            return None
        want = str(call.params.get("MultiAZ")).lower() == "true"
        if want == bool(db.multi_az):
            return None
        return error_response("InvalidParameterCombination", (
            f"gameday sandbox: changing MultiAZ of {ident} from {bool(db.multi_az)} to {want} is not emulated "
            "(the standby is built from the Terraform's multi_az when the sandbox starts); set db_multi_az "
            "in the Terraform variables and start a new sandbox"))
