"""Find the hashicorp/aws provider in a local filesystem mirror and write a per-run CLI config.

The harness runs offline (CI, laptops on planes), so ``terraform init`` must never depend on
registry.terraform.io. The mirror location differs per machine: it is discovered, never assumed.
"""

from __future__ import annotations

import os
import platform
import re
import socket
from collections.abc import Sequence
from pathlib import Path

from gameday import settings
from gameday.errors import PrerequisiteMissing

ENV_MIRROR = "GAMEDAY_TF_PLUGIN_MIRROR"
REGISTRY_HOST = "registry.terraform.io"
DEFAULT_PROVIDER = "hashicorp/aws"

#: Searched in order after the env variable and any existing CLI config.
WELL_KNOWN_MIRRORS: tuple[str, ...] = (
    "/opt/tf-plugins",
    "~/.terraform.d/plugins",
    "~/.local/share/terraform/plugins",
    "/usr/local/share/terraform/plugins",
    "/usr/share/terraform/plugins",
)

_MIRROR_PATH_RE = re.compile(r'filesystem_mirror\s*\{[^}]*?\bpath\s*=\s*"([^"]+)"', re.DOTALL)


def os_arch() -> str:
    """Terraform's platform name for this machine, e.g. ``linux_amd64``."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
            "i386": "386", "i686": "386", "armv7l": "arm"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


def provider_versions(mirror: str | os.PathLike[str], provider: str = DEFAULT_PROVIDER,
                      arch: str | None = None) -> list[str]:
    """Versions of provider available for this platform in mirror (unpacked or packed layout)."""
    arch = arch or os_arch()
    base = Path(mirror).expanduser() / REGISTRY_HOST / provider
    if not base.is_dir():
        return []
    name = provider.split("/")[-1]
    found: set[str] = set()
    for entry in base.iterdir():
        if entry.is_dir() and (entry / arch).is_dir() and any((entry / arch).iterdir()):
            found.add(entry.name)  # unpacked layout: <version>/<os_arch>/terraform-provider-...
        m = re.fullmatch(rf"terraform-provider-{re.escape(name)}_(.+)_{re.escape(arch)}\.zip", entry.name)
        if m and entry.is_file():
            found.add(m.group(1))  # packed layout: terraform-provider-aws_<v>_<os_arch>.zip
    return sorted(found, key=_version_key)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(int(p) if p.isdigit() else 0 for p in re.split(r"[.\-+]", v))


def configured_mirrors(env: os.PathLike[str] | str | None = None) -> list[Path]:
    """filesystem_mirror paths from the user's existing CLI config (TF_CLI_CONFIG_FILE or ~/.terraformrc)."""
    candidates: list[Path] = []
    if env is not None:
        candidates.append(Path(env))
    elif os.environ.get("TF_CLI_CONFIG_FILE"):
        candidates.append(Path(os.environ["TF_CLI_CONFIG_FILE"]))
    candidates.append(Path("~/.terraformrc").expanduser())
    out: list[Path] = []
    for cfg in candidates:
        try:
            text = cfg.read_text(encoding="utf-8")
        except OSError:
            continue
        out.extend(Path(p).expanduser() for p in _MIRROR_PATH_RE.findall(text))
    return out


def registry_reachable(timeout: float = 2.0) -> bool:
    """Whether registry.terraform.io answers on 443 (decides if a missing mirror is fatal)."""
    try:
        with socket.create_connection((REGISTRY_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def find_provider_mirror(provider: str = DEFAULT_PROVIDER, *,
                         search: Sequence[str | os.PathLike[str]] | None = None,
                         online: bool | None = None) -> Path | None:
    """Return the mirror directory holding provider for this platform.

    Order: ``$GAMEDAY_TF_PLUGIN_MIRROR`` (authoritative: wrong → error), the user's CLI config's
    ``filesystem_mirror``, then well-known locations. ``None`` means "not found but the registry
    is reachable, let terraform download"; offline without a mirror raises PrerequisiteMissing.
    """
    explicit = settings.text(ENV_MIRROR)
    if explicit:
        if provider_versions(explicit, provider):
            return Path(explicit).expanduser()
        raise PrerequisiteMissing(
            f"terraform provider {provider} for {os_arch()} in ${ENV_MIRROR}={explicit}",
            f"put the provider at {explicit}/{REGISTRY_HOST}/{provider}/<version>/{os_arch()}/ "
            f"(e.g. `terraform providers mirror {explicit}` on a connected machine) or unset {ENV_MIRROR}",
        )
    where: Sequence[str | os.PathLike[str]] = (
        search if search is not None else [*configured_mirrors(), *WELL_KNOWN_MIRRORS])
    paths = [Path(p).expanduser() for p in where]
    for p in paths:
        if provider_versions(p, provider):
            return p
    if online is None:
        online = registry_reachable()
    if online:
        return None
    raise PrerequisiteMissing(
        f"terraform provider {provider} ({os_arch()}) filesystem mirror (offline: registry unreachable; "
        f"searched {', '.join(str(p) for p in paths) or 'nothing'})",
        f"set {ENV_MIRROR}=<dir> where <dir>/{REGISTRY_HOST}/{provider}/<version>/{os_arch()}/ holds the "
        f"provider binary (create it with `terraform providers mirror <dir>` on a connected machine)",
    )


def render_cli_config(mirror: Path | None, *, allow_direct: bool = False) -> str:
    """CLI config text: hashicorp providers from the mirror only; no plugin cache, no checkpoint calls."""
    lines = ["# written by gameday.provision.mirror for one run; plugin_cache_dir deliberately unset",
             "disable_checkpoint = true", ""]
    if mirror is not None:
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f"    path    = {_hcl_str(str(mirror))}",
            '    include = ["registry.terraform.io/hashicorp/*"]',
            "  }",
        ]
        if allow_direct:
            lines += ["  direct {", '    exclude = ["registry.terraform.io/hashicorp/*"]', "  }"]
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_cli_config(path: str | os.PathLike[str], mirror: Path | None = None, *,
                     provider: str = DEFAULT_PROVIDER, online: bool | None = None) -> Path:
    """Discover the mirror (unless given) and write the CLI config file for one run at path."""
    if mirror is None:
        mirror = find_provider_mirror(provider, online=online)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_cli_config(mirror, allow_direct=bool(online)), encoding="utf-8")
    return out


def _hcl_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
