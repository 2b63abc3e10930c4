"""Where a drill sends traffic and API calls: the local sandbox or real AWS.

The sandbox daemon writes an ``Endpoints`` file; for AWS it is derived from the Topology.
Chaos Toolkit and chaostoolkit-aws reach the sandbox unchanged through boto3's standard
``AWS_ENDPOINT_URL`` variable.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gameday.errors import ConfigError

if TYPE_CHECKING:
    from gameday.provision.topology import Topology

SANDBOX_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}  # moto's dummies
SANDBOX_ACCOUNT = "123456789012"  # moto's default account: every sandbox resource lives in it


@dataclass(frozen=True)
class Endpoints:
    """Addresses of one running target; JSON-serialisable, never holds a secret."""

    kind: str
    primary_region: str
    recovery_region: str
    aws_endpoint_url: str | None
    services: dict[str, str]
    regional: dict[str, dict[str, str]] = field(default_factory=dict)
    db_writer: dict[str, str] = field(default_factory=dict)
    db_reader: dict[str, str] = field(default_factory=dict)
    events_path: str | None = None
    state_dir: str | None = None
    admin_url: str | None = None
    #: The user's Terraform variable files the sandbox was applied with (a report names the variant).
    var_files: list[str] = field(default_factory=list)
    #: Each region's Prometheus (region -> base URL); see docs/MONITORING.md.
    prometheus: dict[str, str] = field(default_factory=dict)

    def aws_env(self) -> dict[str, str]:
        """Environment for boto3/chaostoolkit-aws subprocesses aimed at this target."""
        env = {"AWS_REGION": self.primary_region, "AWS_DEFAULT_REGION": self.primary_region}
        if self.aws_endpoint_url:
            env["AWS_ENDPOINT_URL"] = self.aws_endpoint_url
            env.update(SANDBOX_CREDENTIALS)
        return env

    def regions(self) -> tuple[str, str]:
        return self.primary_region, self.recovery_region

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def save(self, path: str | os.PathLike[str]) -> None:
        p = Path(path)
        tmp = p.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2))
        tmp.replace(p)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Endpoints:
        p = Path(path)
        try:
            data = json.loads(p.read_text())
            return cls(**data)
        except FileNotFoundError as exc:
            raise ConfigError("no endpoints file: is the sandbox up?", file=str(p),
                              hint="run 'gameday sandbox up' first") from exc
        except (json.JSONDecodeError, TypeError) as exc:
            raise ConfigError(f"unreadable endpoints file ({exc})", file=str(p),
                              hint="run 'gameday sandbox down' and 'gameday sandbox up' again") from exc

    @classmethod
    def for_aws(cls, topology: Topology) -> Endpoints:
        """Real AWS: services through their accelerators, ALBs and RDS endpoints by DNS."""
        services = {name: f"http://{svc.accelerator_dns_name}" for name, svc in topology.services.items()}
        regional = {name: {r: f"http://{sr.alb_dns_name}" for r, sr in svc.regions.items()}
                    for name, svc in topology.services.items()}
        db = topology.database
        return cls(
            kind="aws", primary_region=topology.primary_region, recovery_region=topology.recovery_region,
            aws_endpoint_url=None, services=services, regional=regional,
            db_writer={topology.primary_region: db.endpoint},
            db_reader={topology.primary_region: db.endpoint, topology.recovery_region: db.replica_endpoint},
        )
