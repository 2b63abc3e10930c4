#!/usr/bin/env bash
# Installs the system packages the sandbox needs (HAProxy, PostgreSQL, Prometheus, Chromium for the
# report check) from Debian's packages when running as root; otherwise says exactly what to install.
set -euo pipefail

need=()
command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || need+=(haproxy)
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
   && [ -z "${GAMEDAY_PG_BIN:-}" ]; then
  need+=(postgresql)
fi
command -v chromium >/dev/null 2>&1 || need+=(chromium)
# the per-region monitoring (prometheus and its promtool; Debian puts both on PATH)
{ command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; } || [ -n "${GAMEDAY_PROMETHEUS:-}" ] \
  || need+=(prometheus)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)

if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${need[*]} from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # the Debian postgresql package starts a cluster of its own; the sandbox runs its own servers
    if printf '%s\n' "${need[@]}" | grep -qx postgresql; then
      (service postgresql stop || true) >/dev/null 2>&1
    fi
    # likewise the Debian prometheus package's own server: the sandbox runs one per region
    if printf '%s\n' "${need[@]}" | grep -qx prometheus; then
      (service prometheus stop || true) >/dev/null 2>&1
    fi
  else
    echo "setup: missing system packages: ${need[*]}" >&2
    echo "setup: install them, e.g.: sudo apt-get install -y ${need[*]}" >&2
    echo "setup: (or set GAMEDAY_HAPROXY / GAMEDAY_PG_BIN / GAMEDAY_PROMETHEUS to existing binaries)" >&2
    exit 1
  fi
fi

if ! command -v "${GAMEDAY_TERRAFORM:-terraform}" >/dev/null 2>&1; then
  echo "setup: terraform >= 1.5 not found: install it (https://developer.hashicorp.com/terraform/install)" >&2
  echo "setup: or set GAMEDAY_TERRAFORM to its path" >&2
  exit 1
fi
echo "setup: system prerequisites present"
