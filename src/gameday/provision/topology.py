"""The provisioned system as typed, frozen values, built from terraform outputs (DESIGN.md contract).

Everything downstream (sandbox, chaos activities, drills) reads the Topology instead of poking at
terraform output JSON, so a drift in the HCL outputs fails here, once, with the field's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gameday.errors import ConfigError
from gameday.util.redact import REDACTED, Secret

ROUTING_MODES = ("global_accelerator", "route53")
OUTPUT_NAMES = ("regions", "routing_mode", "services", "database", "database_password", "queues", "frontend")
SERVICE_REGION_FIELDS = ("alb_arn", "alb_dns_name", "target_group_arn", "listener_arn", "asg_name",
                         "launch_template_id")
DATABASE_FIELDS = ("primary_identifier", "primary_region", "address", "port", "endpoint", "db_name",
                   "username", "replica_identifier", "replica_region", "replica_address", "replica_endpoint")
#: terraform's database_mode; ``cluster`` outputs carry ``database.mode`` and ``database.cluster``.
DATABASE_MODES = ("instance", "cluster")
CLUSTER_MEMBER_FIELDS = ("identifier", "region", "writer_endpoint", "reader_endpoint")


class _Parser:
    """Field access that names the full output path (``services.web.regions.eu-south-1.alb_arn``) on error."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    def fail(self, path: str, message: str, hint: str | None = None) -> ConfigError:
        return ConfigError(message, file=self.source, field=path,
                           hint=hint or "fix the outputs of provision/terraform (see docs/DESIGN.md)")

    def obj(self, value: Any, path: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.fail(path, f"expected an object, got {type(value).__name__}")
        return value

    def get(self, m: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in m or m[key] is None:
            raise self.fail(f"{path}.{key}" if path else key, "missing output field")
        return m[key]

    def s(self, m: Mapping[str, Any], key: str, path: str, *, arn: bool = False) -> str:
        v = self.get(m, key, path)
        full = f"{path}.{key}" if path else key
        if not isinstance(v, str) or not v.strip():
            raise self.fail(full, f"expected a non-empty string, got {v!r}")
        if arn and not v.startswith("arn:"):
            raise self.fail(full, f"expected an ARN (arn:...), got {v!r}")
        return v

    def port(self, m: Mapping[str, Any], key: str, path: str) -> int:
        v = self.get(m, key, path)
        try:
            p = int(v)
        except (TypeError, ValueError):
            p = -1
        if isinstance(v, bool) or p < 1 or p > 65535 or (isinstance(v, float) and not v.is_integer()):
            raise self.fail(f"{path}.{key}", f"expected a TCP port 1..65535, got {v!r}")
        return p

    def region_map(self, value: Any, path: str, regions: tuple[str, str]) -> Mapping[str, Any]:
        m = self.obj(value, path)
        if set(m) != set(regions):
            raise self.fail(path, f"expected exactly the regions {list(regions)}, got {sorted(m)}")
        return m


@dataclass(frozen=True)
class ServiceRegion:
    """One service's footprint in one region: ALB, target group, listener, ASG, launch template."""

    region: str
    alb_arn: str
    alb_dns_name: str
    target_group_arn: str
    listener_arn: str
    asg_name: str
    launch_template_id: str


@dataclass(frozen=True)
class Service:
    """A service in both regions behind its global routing (Global Accelerator or Route 53 failover).

    The accelerator fields are empty under ``route53``, the Route 53 ones under ``global_accelerator``.
    """

    name: str
    regions: Mapping[str, ServiceRegion]
    accelerator_arn: str
    accelerator_dns_name: str
    ga_listener_arn: str
    endpoint_group_arns: Mapping[str, str]
    global_dns_name: str = ""
    route53_zone_id: str = ""
    health_check_ids: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def region(self, region: str) -> ServiceRegion:
        try:
            return self.regions[region]
        except KeyError:
            msg = f"service {self.name} has no region {region!r} (has {sorted(self.regions)})"
            raise KeyError(msg) from None


@dataclass(frozen=True)
class ClusterMember:
    """One Aurora cluster of the global database: its writer (cluster) and reader endpoints, its instances.

    The secondary has a writer endpoint too; it accepts writes only once the cluster is promoted.
    """

    identifier: str
    region: str
    writer_endpoint: str
    reader_endpoint: str
    instances: tuple[str, ...]


@dataclass(frozen=True)
class DatabaseCluster:
    """The Aurora global database: primary cluster (primary region), secondary cluster (recovery region)."""

    global_cluster_id: str
    primary: ClusterMember
    secondary: ClusterMember

    @property
    def members(self) -> tuple[ClusterMember, ClusterMember]:
        return (self.primary, self.secondary)


@dataclass(frozen=True)
class Database:
    """The database and its cross-region copy; password never in repr.

    ``mode`` ``instance``: an RDS PostgreSQL primary (Multi-AZ) and its cross-region read replica.
    ``mode`` ``cluster``: an Aurora global database (``cluster``); ``address`` is then the primary cluster's
    writer endpoint, ``replica_address`` the secondary cluster's reader endpoint, the identifiers the clusters'.
    """

    primary_identifier: str
    primary_region: str
    address: str
    port: int
    endpoint: str
    db_name: str
    username: str
    replica_identifier: str
    replica_region: str
    replica_address: str
    replica_endpoint: str
    password: Secret | None = field(default=None, repr=False, compare=False)
    mode: str = "instance"
    cluster: DatabaseCluster | None = None


@dataclass(frozen=True)
class Frontend:
    """The S3 website bucket serving the front end."""

    bucket: str
    website_endpoint: str


@dataclass(frozen=True)
class Topology:
    """What terraform provisioned: two regions, services, database, queues, front end."""

    primary_region: str
    recovery_region: str
    routing_mode: str
    services: Mapping[str, Service]
    database: Database
    queues: Mapping[str, str]
    frontend: Frontend

    # ------------------------------------------------------------- helpers

    @property
    def regions(self) -> tuple[str, str]:
        """(primary, recovery)."""
        return (self.primary_region, self.recovery_region)

    @property
    def service_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.services))

    def other_region(self, region: str) -> str:
        """The region that is not ``region`` (failover target)."""
        if region == self.primary_region:
            return self.recovery_region
        if region == self.recovery_region:
            return self.primary_region
        raise ValueError(f"unknown region {region!r}: the topology has {list(self.regions)}")

    def service(self, name: str) -> Service:
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"unknown service {name!r}: the topology has {list(self.service_names)}") from None

    # --------------------------------------------------------------- parse

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any], *, source: str | None = None, strict: bool = False,
                     require_password: bool = True) -> Topology:
        """Build from ``terraform output -json`` (raw ``{"x": {"value": ..}}`` or unwrapped values).

        ``strict`` also rejects outputs not in the contract; ``require_password=False`` accepts a
        redacted/missing ``database_password`` (saved topologies).
        """
        p = _Parser(source)
        if not isinstance(outputs, Mapping):
            raise p.fail("(root)", f"expected an object of outputs, got {type(outputs).__name__}")
        out = _unwrap(outputs)
        if strict:
            extra = sorted(set(out) - set(OUTPUT_NAMES))
            if extra:
                raise p.fail(extra[0], f"unexpected outputs {extra}: the contract is {list(OUTPUT_NAMES)}")

        regions_m = p.obj(p.get(out, "regions", ""), "regions")
        primary = p.s(regions_m, "primary", "regions")
        recovery = p.s(regions_m, "recovery", "regions")
        if primary == recovery:
            raise p.fail("regions", f"primary and recovery must differ, both are {primary!r}")
        regions = (primary, recovery)

        routing = p.s(out, "routing_mode", "")
        if routing not in ROUTING_MODES:
            raise p.fail("routing_mode", f"expected one of {list(ROUTING_MODES)}, got {routing!r}")

        services_m = p.obj(p.get(out, "services", ""), "services")
        if not services_m:
            raise p.fail("services", "no services")
        services: dict[str, Service] = {}
        for name, raw in services_m.items():
            sp = f"services.{name}"
            sm = p.obj(raw, sp)
            per_region = p.region_map(p.get(sm, "regions", sp), f"{sp}.regions", regions)
            srs: dict[str, ServiceRegion] = {}
            for region in regions:
                rp = f"{sp}.regions.{region}"
                rm = p.obj(per_region[region], rp)
                srs[region] = ServiceRegion(
                    region=region,
                    alb_arn=p.s(rm, "alb_arn", rp, arn=True),
                    alb_dns_name=p.s(rm, "alb_dns_name", rp),
                    target_group_arn=p.s(rm, "target_group_arn", rp, arn=True),
                    listener_arn=p.s(rm, "listener_arn", rp, arn=True),
                    asg_name=p.s(rm, "asg_name", rp),
                    launch_template_id=p.s(rm, "launch_template_id", rp),
                )
            if routing == "global_accelerator":
                egs = p.region_map(p.get(sm, "endpoint_group_arns", sp), f"{sp}.endpoint_group_arns", regions)
                dns = p.s(sm, "accelerator_dns_name", sp)
                services[name] = Service(
                    name=name,
                    regions=MappingProxyType(srs),
                    accelerator_arn=p.s(sm, "accelerator_arn", sp, arn=True),
                    accelerator_dns_name=dns,
                    ga_listener_arn=p.s(sm, "ga_listener_arn", sp, arn=True),
                    endpoint_group_arns=MappingProxyType({r: p.s(egs, r, f"{sp}.endpoint_group_arns", arn=True)
                                                          for r in regions}),
                    global_dns_name=str(sm.get("global_dns_name") or dns),
                )
            else:
                hcs = p.region_map(p.get(sm, "health_check_ids", sp), f"{sp}.health_check_ids", regions)
                services[name] = Service(
                    name=name,
                    regions=MappingProxyType(srs),
                    accelerator_arn="", accelerator_dns_name="", ga_listener_arn="",
                    endpoint_group_arns=MappingProxyType({}),
                    global_dns_name=p.s(sm, "global_dns_name", sp),
                    route53_zone_id=p.s(sm, "route53_zone_id", sp),
                    health_check_ids=MappingProxyType({r: p.s(hcs, r, f"{sp}.health_check_ids")
                                                       for r in regions}),
                )

        dm = p.obj(p.get(out, "database", ""), "database")
        password = _password(p, out, require_password)
        db = Database(
            primary_identifier=p.s(dm, "primary_identifier", "database"),
            primary_region=p.s(dm, "primary_region", "database"),
            address=p.s(dm, "address", "database"),
            port=p.port(dm, "port", "database"),
            endpoint=p.s(dm, "endpoint", "database"),
            db_name=p.s(dm, "db_name", "database"),
            username=p.s(dm, "username", "database"),
            replica_identifier=p.s(dm, "replica_identifier", "database"),
            replica_region=p.s(dm, "replica_region", "database"),
            replica_address=p.s(dm, "replica_address", "database"),
            replica_endpoint=p.s(dm, "replica_endpoint", "database"),
            password=password,
            mode=_database_mode(p, dm),
            cluster=_cluster(p, dm, regions),
        )
        if db.primary_region != primary:
            raise p.fail("database.primary_region",
                         f"expected the primary region {primary!r}, got {db.primary_region!r}")
        if db.replica_region != recovery:
            raise p.fail("database.replica_region",
                         f"expected the recovery region {recovery!r}, got {db.replica_region!r}")

        qm = p.region_map(p.get(out, "queues", ""), "queues", regions)
        queues = {r: p.s(qm, r, "queues") for r in regions}

        fm = p.obj(p.get(out, "frontend", ""), "frontend")
        frontend = Frontend(bucket=p.s(fm, "bucket", "frontend"),
                            website_endpoint=p.s(fm, "website_endpoint", "frontend"))
        return cls(primary_region=primary, recovery_region=recovery, routing_mode=routing,
                   services=MappingProxyType(services), database=db, queues=MappingProxyType(queues),
                   frontend=frontend)

    # ---------------------------------------------------------- serialize

    def to_dict(self, *, redacted: bool = True) -> dict[str, Any]:
        """The outputs shape of DESIGN.md (unwrapped); the password is masked unless redacted=False."""
        db: dict[str, Any] = {k: getattr(self.database, k) for k in DATABASE_FIELDS}
        if self.database.cluster is not None:
            c = self.database.cluster
            db["mode"] = self.database.mode
            db["cluster"] = {"global_cluster_id": c.global_cluster_id, **{
                role: {**{k: getattr(m, k) for k in CLUSTER_MEMBER_FIELDS}, "instances": list(m.instances)}
                for role, m in (("primary", c.primary), ("secondary", c.secondary))}}
        pw: str | None = None
        if self.database.password is not None:
            pw = REDACTED if redacted else str(self.database.password)
        return {
            "regions": {"primary": self.primary_region, "recovery": self.recovery_region},
            "routing_mode": self.routing_mode,
            "services": {
                name: {
                    "regions": {r: {k: getattr(sr, k) for k in SERVICE_REGION_FIELDS}
                                for r, sr in s.regions.items()},
                    "global_dns_name": s.global_dns_name,
                    "accelerator_arn": s.accelerator_arn or None,
                    "accelerator_dns_name": s.accelerator_dns_name or None,
                    "ga_listener_arn": s.ga_listener_arn or None,
                    "endpoint_group_arns": dict(s.endpoint_group_arns) or None,
                    "route53_zone_id": s.route53_zone_id or None,
                    "health_check_ids": dict(s.health_check_ids) or None,
                }
                for name, s in self.services.items()
            },
            "database": db,
            "database_password": pw,
            "queues": dict(self.queues),
            "frontend": {"bucket": self.frontend.bucket, "website_endpoint": self.frontend.website_endpoint},
        }

    def save(self, path: str | os.PathLike[str], *, redacted: bool = True) -> Path:
        """Write JSON (password masked unless redacted=False, then the file is made 0600)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(out.suffix + ".tmp")
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600 if not redacted else 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(self.to_dict(redacted=redacted), fh, indent=2, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, out)
        return out

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, password: str | None = None) -> Topology:
        """Read a saved topology; a redacted password comes back as None unless ``password`` is given."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError("topology file does not exist", file=str(p),
                              hint="run `gameday provision up` first (or pass --state-dir)") from exc
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"unreadable topology JSON: {exc}", file=str(p)) from exc
        if password is not None and isinstance(data, dict):
            data = {**data, "database_password": password}
        return cls.from_outputs(data, source=str(p), require_password=False)

    def summary(self) -> str:
        """Human-readable multi-line description (no secrets)."""
        lines = [f"regions: primary {self.primary_region}, recovery {self.recovery_region} "
                 f"(routing: {self.routing_mode})"]
        for name in self.service_names:
            s = self.services[name]
            how = f"accelerator {s.accelerator_dns_name}" if s.accelerator_dns_name else \
                f"route53 failover {s.global_dns_name}"
            lines.append(f"service {name}: {how}")
            for r in self.regions:
                sr = s.regions[r]
                lines.append(f"  {r}: alb {sr.alb_dns_name}  asg {sr.asg_name}")
        d = self.database
        lines.append(f"database {d.db_name} (user {d.username}): primary {d.primary_identifier} "
                     f"{d.endpoint} [{d.primary_region}], replica {d.replica_identifier} "
                     f"{d.replica_endpoint} [{d.replica_region}]")
        if d.cluster is not None:
            lines.append(f"  aurora global database {d.cluster.global_cluster_id}:")
            for role, m in (("primary", d.cluster.primary), ("secondary", d.cluster.secondary)):
                lines.append(f"    {role} {m.identifier} [{m.region}]: writer {m.writer_endpoint}, "
                             f"reader {m.reader_endpoint}, instances {', '.join(m.instances)}")
        for r in self.regions:
            lines.append(f"queue {r}: {self.queues[r]}")
        lines.append(f"frontend: s3://{self.frontend.bucket} -> {self.frontend.website_endpoint}")
        return "\n".join(lines)


def _unwrap(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Accept raw ``terraform output -json`` (every entry ``{"value", "type"...}``) or plain values."""
    raw = bool(outputs) and all(isinstance(v, Mapping) and "value" in v and ("type" in v or "sensitive" in v)
                                for v in outputs.values())
    if not raw:
        return dict(outputs)
    return {k: v["value"] for k, v in outputs.items()}


def _database_mode(p: _Parser, dm: Mapping[str, Any]) -> str:
    """Absent ``mode`` is instance mode (its outputs predate the field)."""
    mode = dm.get("mode")
    if mode is None:
        return "instance"
    if mode not in DATABASE_MODES:
        raise p.fail("database.mode", f"expected one of {list(DATABASE_MODES)}, got {mode!r}")
    return str(mode)


def _cluster(p: _Parser, dm: Mapping[str, Any], regions: tuple[str, str]) -> DatabaseCluster | None:
    mode = _database_mode(p, dm)
    if mode == "instance":
        if dm.get("cluster") is not None:
            raise p.fail("database.cluster", "a cluster under database.mode \"instance\"")
        return None
    cm = p.obj(p.get(dm, "cluster", "database"), "database.cluster")
    members = []
    for role, region in zip(("primary", "secondary"), regions, strict=True):
        path = f"database.cluster.{role}"
        mm = p.obj(p.get(cm, role, "database.cluster"), path)
        raw = p.get(mm, "instances", path)
        if not isinstance(raw, list) or not raw or not all(isinstance(i, str) and i for i in raw):
            raise p.fail(f"{path}.instances", f"expected a non-empty list of instance identifiers, got {raw!r}")
        member = ClusterMember(identifier=p.s(mm, "identifier", path), region=p.s(mm, "region", path),
                               writer_endpoint=p.s(mm, "writer_endpoint", path),
                               reader_endpoint=p.s(mm, "reader_endpoint", path), instances=tuple(raw))
        if member.region != region:
            raise p.fail(f"{path}.region", f"expected the {role} cluster in {region!r}, got {member.region!r}")
        members.append(member)
    return DatabaseCluster(global_cluster_id=p.s(cm, "global_cluster_id", "database.cluster"),
                           primary=members[0], secondary=members[1])


def _password(p: _Parser, out: Mapping[str, Any], required: bool) -> Secret | None:
    v = out.get("database_password")
    if v is None or v == REDACTED:
        if required:
            raise p.fail("database_password", "missing sensitive output",
                         hint="declare a sensitive output database_password in provision/terraform")
        return None
    if not isinstance(v, str) or not v:
        raise p.fail("database_password", "expected a non-empty string")
    return v if isinstance(v, Secret) else Secret(v)
